"""One supervised service at run time: its options, its run, and how a run ended."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, final

import trio

from ._errors import DoNotRestart, StartTimeout, StopSupervisor, WatchdogTimeout
from ._logging import ServiceLoggerAdapter, service_extra, service_logger
from ._policy import Backoff, Restart
from ._service import ServiceSpec
from ._status import Status
from ._util import optional_seconds

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from ._config import Settings

_INF = math.inf
FATAL_EXCEPTIONS = (KeyboardInterrupt, SystemExit)


@final
class StopBatch:
    """Counts the services of one stop request that have not ended yet."""

    __slots__ = ("done", "remaining")

    def __init__(self) -> None:
        self.remaining = 0
        self.done = trio.Event()

    def child_ended(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.done.set()


@final
class Child:
    """A service under one supervisor; the state its restart loop works on.

    One object per service for the supervisor's lifetime, with slots only:
    a supervisor of 100,000 services holds 100,000 of these.
    """

    __slots__ = (
        "args",
        "attempt",
        "awaiting_group_restart",
        "backoff",
        "extra",
        "fn",
        "id",
        "in_run",
        "logger",
        "loop_alive",
        "name",
        "ready",
        "ready_waiter",
        "removed",
        "reported_running",
        "restart",
        "running_since",
        "runs",
        "scope",
        "settings",
        "shutdown_timeout",
        "start_deadline",
        "start_timeout",
        "starting",
        "stop_batches",
        "stop_deadline",
        "stop_event",
        "stopping",
        "timed",
        "watchdog",
        "watchdog_deadline",
    )

    def __init__(
        self, service_id: int, spec: ServiceSpec, name: str, settings: Settings
    ) -> None:
        self.id = service_id
        self.name = name
        self.settings = settings
        self.fn, self.args = spec._entry_point()
        self.restart: Restart = spec.restart
        self.backoff: Backoff | None = spec.backoff or settings.backoff
        self.ready = spec.ready
        self.start_timeout = optional_seconds("start_timeout", spec.start_timeout)
        shutdown_timeout = optional_seconds("shutdown_timeout", spec.shutdown_timeout)
        self.shutdown_timeout = (
            settings.shutdown_timeout if shutdown_timeout is None else shutdown_timeout
        )
        self.watchdog = optional_seconds("watchdog", spec.watchdog)
        self.timed = self.watchdog is not None or self.start_timeout is not None
        """Whether a deadline of its own (watchdog, start timeout) may cancel a run."""
        self.logger: ServiceLoggerAdapter | None = None
        self.extra: dict[str, object] | None = None
        self.reset()

    def reset(self) -> None:
        """Forget everything about earlier runs of the supervisor."""
        self.scope: trio.CancelScope | None = None
        self.in_run = False
        self.starting = False
        self.stopping = False
        self.removed = False
        self.loop_alive = False
        self.awaiting_group_restart = False
        self.reported_running = False
        self.stop_event: trio.Event | None = None
        self.ready_waiter: trio.Event | None = None
        self.stop_batches: list[StopBatch] | None = None
        self.attempt = 0
        self.runs = 0
        self.running_since = 0.0
        self.start_deadline = _INF
        self.watchdog_deadline = _INF
        self.stop_deadline = _INF

    def __repr__(self) -> str:
        return f"<service {self.id} {self.name!r}>"

    # --- one run -------------------------------------------------------------

    def begin_run(self, now: float, scope: trio.CancelScope | None) -> None:
        """Prepare the state of a new run in ``scope``, starting at ``now``."""
        self.scope = scope
        self.runs += 1
        self.in_run = True
        self.stop_event = None
        # A ready service is RUNNING only from started(): until then its run
        # must not count as healthy time for the backoff's reset.
        self.running_since = _INF if self.ready else now
        if self.ready:
            self.starting = True
            if self.start_timeout is not None:
                self.start_deadline = now + self.start_timeout
        if self.watchdog is not None:
            self.watchdog_deadline = now + self.watchdog
        if scope is not None and (
            self.start_deadline != _INF or self.watchdog_deadline != _INF
        ):
            scope.deadline = min(self.start_deadline, self.watchdog_deadline)

    def end_run(self) -> None:
        """Clear the run's state; its scope may serve the next run."""
        self.in_run = False
        self.starting = False
        # Only its own deadlines or a stop's timeout put a deadline on the scope.
        if (self.timed or self.stop_deadline != _INF) and self.scope is not None:
            self.scope.deadline = _INF
        self.start_deadline = self.watchdog_deadline = self.stop_deadline = _INF

    def refresh_deadline(self) -> None:
        scope = self.scope
        if scope is not None and self.in_run:
            start = self.start_deadline if self.starting else _INF
            scope.deadline = min(start, self.watchdog_deadline, self.stop_deadline)

    def became_ready(self, now: float) -> None:
        self.starting = False
        self.start_deadline = _INF
        self.running_since = now
        self.refresh_deadline()

    def heartbeat(self, now: float) -> None:
        if self.watchdog is not None and self.in_run and not self.stopping:
            self.watchdog_deadline = now + self.watchdog
            self.refresh_deadline()

    def stop_requested_event(self) -> trio.Event:
        event = self.stop_event
        if event is None:
            event = self.stop_event = trio.Event()
            if self.stopping:
                event.set()
        return event

    def mark_stopping(self) -> None:
        """Tell the service, and its loop, that the supervisor stops it."""
        self.stopping = True
        if self.stop_event is not None:
            self.stop_event.set()

    def request_stop(self, now: float) -> None:
        """Ask the service to stop: set its event, cancel it now or after its
        shutdown timeout (at once while it waits to be restarted)."""
        self.mark_stopping()
        # From now on only the shutdown timeout may cut the run short.
        self.start_deadline = self.watchdog_deadline = _INF
        scope = self.scope
        if scope is None:
            return
        if self.shutdown_timeout == 0 or not self.in_run:
            scope.cancel()
        else:
            self.stop_deadline = min(self.stop_deadline, now + self.shutdown_timeout)
            self.refresh_deadline()

    def log_extra(self) -> dict[str, object]:
        """The ``extra`` fields of the supervisor's records about this service
        (made once: logging copies them into each record, never changes them)."""
        extra = self.extra
        if extra is None:
            extra = self.extra = service_extra(self.id, self.name)
        return extra

    def get_logger(self) -> ServiceLoggerAdapter:
        logger = self.logger
        if logger is None:
            logger = self.logger = service_logger(
                self.settings.logger, self.id, self.name
            )
        return logger

    def next_delay(self, ended_at: float) -> float:
        """Seconds to wait before the next restart, advancing the backoff."""
        backoff = self.backoff
        if backoff is None:
            return self.settings.restart_interval
        if ended_at - self.running_since >= backoff.reset_after:
            self.attempt = 0
        delay = backoff.delay(self.attempt)
        self.attempt += 1
        return delay

    def timeout_error(self) -> Exception:
        """Why the supervisor's deadline cancelled the run."""
        if self.starting and self.start_timeout is not None:
            return StartTimeout(
                f"service {self.name!r} did not call task_status.started() "
                f"within {self.start_timeout:g}s"
            )
        return WatchdogTimeout(
            f"service {self.name!r} sent no heartbeat() within {self.watchdog:g}s"
        )


@final
class ReadyStatus:
    """The ``task_status`` a ``ready=True`` service gets: ``started()`` makes it
    RUNNING and lets the next service start."""

    __slots__ = ("_on_started", "_used")

    def __init__(self, on_started: Callable[[], None]) -> None:
        self._on_started = on_started
        self._used = False

    def __repr__(self) -> str:
        return f"<trio_supervisor task status, started={self._used}>"

    def started(self, value: object = None) -> None:
        """Report the service ready; ``value`` is ignored."""
        if self._used:
            raise RuntimeError("called 'started' twice on the same task status")
        self._used = True
        self._on_started()


def without_cancelled(error: BaseException) -> BaseException | None:
    """``error`` without its `trio.Cancelled` parts (None if nothing stays)."""
    if isinstance(error, trio.Cancelled):
        return None
    if isinstance(error, BaseExceptionGroup):
        return error.split(trio.Cancelled)[1]
    return error


def consists_of(
    error: BaseException,
    kind: type[BaseException] | tuple[type[BaseException], ...],
) -> bool:
    """True when ``error`` is a ``kind``, or a group of nothing but ``kind``."""
    if isinstance(error, kind):
        return True
    return isinstance(error, BaseExceptionGroup) and error.split(kind)[1] is None


def contains(error: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    """True when ``error`` is, or its group holds, one of ``kinds``."""
    if isinstance(error, kinds):
        return True
    return isinstance(error, BaseExceptionGroup) and error.subgroup(kinds) is not None


# What the error that ended a run asks of the supervisor, besides a status.
FATAL = 1
"""KeyboardInterrupt or SystemExit: stop everything, then raise it from run()."""
STOP_SUPERVISOR = 2
"""StopSupervisor: stop everything, then return from run()."""
DO_NOT_RESTART = 4
"""DoNotRestart: never restart this service."""


def classify(error: BaseException | None) -> tuple[Status, int]:
    """The status of a run that ended with ``error`` (Cancelled already taken
    out), and what it asks of the supervisor."""
    if error is None:
        return Status.STOPPED, 0
    if not isinstance(error, BaseExceptionGroup):
        if isinstance(error, Exception):
            if isinstance(error, DoNotRestart):
                return Status.STOPPED, DO_NOT_RESTART
            if isinstance(error, StopSupervisor):
                return Status.STOPPED, STOP_SUPERVISOR
            return Status.ERROR, 0
        return Status.PANIC, FATAL if isinstance(error, FATAL_EXCEPTIONS) else 0
    flags = FATAL if contains(error, FATAL_EXCEPTIONS) else 0
    if consists_of(error, StopSupervisor):
        return Status.STOPPED, flags | STOP_SUPERVISOR
    if consists_of(error, DoNotRestart):
        return Status.STOPPED, flags | DO_NOT_RESTART
    if consists_of(error, (DoNotRestart, StopSupervisor)):
        return Status.STOPPED, flags | DO_NOT_RESTART | STOP_SUPERVISOR
    return (Status.ERROR if isinstance(error, Exception) else Status.PANIC), flags
