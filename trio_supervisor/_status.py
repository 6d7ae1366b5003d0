"""What a supervised service is doing, and the record of each change."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, final

_INT_FORMAT_TYPES = frozenset("bcdnoxX")


@final
class Status(enum.IntEnum):
    """The status of a supervised service.

    ``str()`` gives the seed's capitalised names, the integer value is what
    `StatusUpdate.to_dict` serialises:

        >>> str(Status.ERROR), int(Status.ERROR), Status.RUNNING.is_alive
        ('Error', 3, True)
    """

    IDLE = 0
    """Scheduled by the supervisor, not yet running."""
    RUNNING = 1
    """Running (or, for a service started with ``ready=True``, ready)."""
    STOPPED = 2
    """Returned without error, or was stopped by the supervisor."""
    ERROR = 3
    """Raised an `Exception`."""
    PANIC = 4
    """Raised a `BaseException` that is not an `Exception`."""

    def __str__(self) -> str:
        return self.name.capitalize()

    def __format__(self, format_spec: str) -> str:
        if format_spec and format_spec[-1] in _INT_FORMAT_TYPES:
            return format(int(self), format_spec)
        return format(str(self), format_spec)

    @property
    def is_alive(self) -> bool:
        """True for `IDLE` and `RUNNING`: the service has not ended."""
        return self <= Status.RUNNING


@final
@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One status change of one service: a frozen record, shared by every reader.

    For example:

        >>> update = StatusUpdate(0, "poller", 12.5, Status.ERROR, ValueError("boom"))
        >>> update.to_dict()
        {'serviceId': 0, 'serviceName': 'poller', 'time': 12.5, 'status': 3}

    Attributes:
        service_id: The service's id in its supervisor (``0, 1, 2, …``).
        service_name: The service's name.
        time: `trio.current_time` at the change, on the run's clock.
        status: The new status.
        err: The exception that ended the run, for `Status.ERROR` and
            `Status.PANIC` (and the `DoNotRestart`
            that ended a service for good); otherwise ``None``.
    """

    service_id: int
    service_name: str
    time: float
    status: Status
    err: BaseException | None = None

    def to_dict(self) -> dict[str, Any]:
        """The update with the seed's JSON field names; ``err`` is never serialised."""
        return {
            "serviceId": self.service_id,
            "serviceName": self.service_name,
            "time": self.time,
            "status": int(self.status),
        }


_new_object = object.__new__
_set_service_id, _set_service_name, _set_time, _set_status, _set_err = (
    StatusUpdate.__dict__[name].__set__
    for name in ("service_id", "service_name", "time", "status", "err")
)


def make_update(
    service_id: int,
    service_name: str,
    time: float,
    status: Status,
    err: BaseException | None,
) -> StatusUpdate:
    """``StatusUpdate(service_id, service_name, time, status, err)`` in half the
    time: it fills the slots directly, where a frozen dataclass's ``__init__``
    goes through ``object.__setattr__``. Every status change makes one."""
    update: StatusUpdate = _new_object(StatusUpdate)
    _set_service_id(update, service_id)
    _set_service_name(update, service_name)
    _set_time(update, time)
    _set_status(update, status)
    _set_err(update, err)
    return update


@final
class Phase(enum.IntEnum):
    """Where a supervisor is in its run, in the order it gets there.

    ``await supervisor.wait_phase(Phase.RUNNING)`` waits for startup:

        >>> Phase.STARTING < Phase.RUNNING < Phase.STOPPING
        True
    """

    IDLE = 0
    """Not run yet."""
    STARTING = 1
    """``run()`` is starting the services in order."""
    RUNNING = 2
    """Every service has reported RUNNING (or ended its first run)."""
    STOPPING = 3
    """Shutdown has begun: services are being stopped."""
    STOPPED = 4
    """``run()`` has ended; a new ``run()`` starts again at STARTING."""

    def __str__(self) -> str:
        return self.name.capitalize()
