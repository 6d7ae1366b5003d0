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
    :meth:`StatusUpdate.to_dict` serialises::

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
    """Raised an :class:`Exception`."""
    PANIC = 4
    """Raised a :class:`BaseException` that is not an :class:`Exception`."""

    def __str__(self) -> str:
        return self.name.capitalize()

    def __format__(self, format_spec: str) -> str:
        if format_spec and format_spec[-1] in _INT_FORMAT_TYPES:
            return format(int(self), format_spec)
        return format(str(self), format_spec)

    @property
    def is_alive(self) -> bool:
        """True for :attr:`IDLE` and :attr:`RUNNING`: the service has not ended."""
        return self <= Status.RUNNING


@final
@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One status change of one service: a frozen record, shared by every reader.

    Example::

        >>> update = StatusUpdate(0, "poller", 12.5, Status.ERROR, ValueError("boom"))
        >>> update.to_dict()
        {'serviceId': 0, 'serviceName': 'poller', 'time': 12.5, 'status': 3}

    Attributes:
        service_id: The service's id in its supervisor (``0, 1, 2, …``).
        service_name: The service's name.
        time: :func:`trio.current_time` at the change, on the run's clock.
        status: The new status.
        err: The exception that ended the run, for :attr:`Status.ERROR` and
            :attr:`Status.PANIC` (and the :class:`~trio_supervisor.DoNotRestart`
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


@final
class Phase(enum.IntEnum):
    """Where a supervisor is in its run, in the order it gets there.

    ``await supervisor.wait_phase(Phase.RUNNING)`` waits for startup::

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
