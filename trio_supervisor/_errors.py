"""Exceptions that callers catch, and that services raise to steer their supervisor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from ._status import StatusUpdate


class SupervisorError(Exception):
    """Base class of the errors a supervisor raises from ``run()``.

    Catch it to handle any of them:

        try:
            await supervisor.run()
        except SupervisorError:
            log.exception("supervisor gave up")
            raise
    """


@final
class RestartIntensityExceeded(SupervisorError):
    """More restarts were needed than ``max_restarts`` within ``max_seconds``.

    The supervisor stopped every service and ``run()`` raised this, bare:

        try:
            await supervisor.run()
        except RestartIntensityExceeded as exc:
            print([update.service_name for update in exc.failures])

    Attributes:
        failures: The updates that ended the runs counted against the limit,
            oldest first; the last one is the run that could not be restarted.
    """

    def __init__(self, message: str, failures: Sequence[StatusUpdate]) -> None:
        super().__init__(message)
        self.failures: list[StatusUpdate] = list(failures)


class DoNotRestart(Exception):
    """Raised by a service to stop for good, whatever its restart policy.

    The service is reported `STOPPED` with this
    exception as ``err``, and stays so:

        async def migrate() -> None:
            await run_migrations()
            raise DoNotRestart("migrations applied")
    """


class StopSupervisor(Exception):
    """Raised by a service to stop its whole supervisor gracefully.

    The service is reported `STOPPED`, every
    other service is stopped, and ``run()`` returns normally:

        async def one_shot_job() -> None:
            await do_the_work()
            raise StopSupervisor("job done")
    """


@final
class WatchdogTimeout(Exception):
    """A service with a ``watchdog`` did not call `heartbeat` in time.

    The supervisor cancelled it and reports it `ERROR`
    with this exception, then restarts it by its policy:

        stuck = [
            update.service_name
            for update in supervisor.statuses()
            if isinstance(update.err, WatchdogTimeout)
        ]
    """


@final
class StartTimeout(Exception):
    """A service started with ``ready=True`` did not call ``task_status.started()``
    within its ``start_timeout``.

    The supervisor cancelled it and reports it `ERROR`
    with this exception, then restarts it by its policy:

        new_service("db", open_database, ready=True, start_timeout=30)
    """
