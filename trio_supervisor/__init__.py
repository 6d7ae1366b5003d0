"""A supervisor for Trio services: start them, restart those that end, report every
status change, and stop them all cleanly.

    >>> from trio_supervisor import Config, Supervisor, new_service
"""

from ._config import Config, StatusUpdateListener
from ._context import current_logger, heartbeat, stop_requested
from ._errors import (
    DoNotRestart,
    RestartIntensityExceeded,
    StartTimeout,
    StopSupervisor,
    SupervisorError,
    WatchdogTimeout,
)
from ._policy import Backoff, Restart, Strategy
from ._process import ProcessFailed, process_service
from ._service import Service, ServiceOptions, ServiceSpec, new_service
from ._status import Phase, Status, StatusUpdate
from ._supervisor import Supervisor, open_supervisor
from ._util import fixup_module_metadata as _fixup_module_metadata

__all__ = [
    "Backoff",
    "Config",
    "DoNotRestart",
    "Phase",
    "ProcessFailed",
    "Restart",
    "RestartIntensityExceeded",
    "Service",
    "ServiceOptions",
    "ServiceSpec",
    "StartTimeout",
    "Status",
    "StatusUpdate",
    "StatusUpdateListener",
    "StopSupervisor",
    "Strategy",
    "Supervisor",
    "SupervisorError",
    "WatchdogTimeout",
    "current_logger",
    "heartbeat",
    "new_service",
    "open_supervisor",
    "process_service",
    "stop_requested",
]

_fixup_module_metadata(__name__, globals())
