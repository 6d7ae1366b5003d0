"""Tell systemd how a supervisor is doing: readiness, shutdown, a status line and
watchdog keep-alives, over the ``sd_notify`` protocol.

In a unit with ``Type=notify`` (and ``WatchdogSec=`` for the watchdog):

    supervisor = Supervisor(config)
    async with systemd.notify(supervisor):
        await supervisor.run()

Outside systemd (no ``NOTIFY_SOCKET`` in the environment) it does nothing.
"""

from __future__ import annotations

import math
import os
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from types import TracebackType
from typing import final

import trio

from . import _util
from ._logging import AnyLogger
from ._status import Phase, Status, StatusUpdate
from ._supervisor import Supervisor

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

__all__ = ["SystemdNotifier", "notify"]

DEFAULT_STATUS_INTERVAL = 1.0
"""Seconds between a status change and the ``STATUS=`` line that reports it."""
_SEND_TIMEOUT = 1.0
"""Seconds a message may wait for room in systemd's socket before it is dropped."""


def _notify_address(value: str | None) -> str | None:
    """The socket address in ``NOTIFY_SOCKET``: a path, or ``@name`` for an
    abstract socket (returned with its leading NUL); None when unset or empty.

    Raises:
        ValueError: Neither an absolute path nor ``@name``.
    """
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    raise ValueError(f"NOTIFY_SOCKET must be an absolute path or @name, got {value!r}")


def _watchdog_interval(usec: str | None, pid: str | None) -> float | None:
    """Seconds between keep-alives: half of ``WATCHDOG_USEC``; None when the
    watchdog is off or meant for another process (``WATCHDOG_PID``).

    Raises:
        ValueError: Either variable is not a positive integer.
    """
    if not usec:
        return None
    if not usec.isdigit() or int(usec) == 0:
        raise ValueError(f"WATCHDOG_USEC must be a positive integer, got {usec!r}")
    if pid:
        if not pid.isdigit() or int(pid) == 0:
            raise ValueError(f"WATCHDOG_PID must be a positive integer, got {pid!r}")
        if int(pid) != os.getpid():
            return None
    return int(usec) / 2_000_000


def _status_line(updates: list[StatusUpdate]) -> str:
    """The counts of services by status, in the order of `Status`:

    >>> _status_line([StatusUpdate(0, "a", 0.0, Status.RUNNING),
    ...              StatusUpdate(1, "b", 0.0, Status.ERROR)])
    '1 running, 1 error'
    """
    if not updates:
        return "no services"
    counts = Counter(update.status for update in updates)
    return ", ".join(
        f"{counts[status]} {str(status).lower()}" for status in Status if counts[status]
    )


@final
class _Socket:
    """The datagram socket to systemd; failures are logged, never raised."""

    __slots__ = ("address", "failing", "logger", "sock")

    def __init__(self, address: str, logger: AnyLogger) -> None:
        self.address = address
        self.logger = logger
        self.sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.failing = False

    async def send(self, message: str) -> None:
        with trio.move_on_after(_SEND_TIMEOUT) as scope:
            try:
                await self.sock.sendto(message.encode(), self.address)
            except OSError as exc:
                if not self.failing:
                    self.failing = True
                    self.logger.warning(
                        "cannot notify systemd at %r: %s", self.address, exc
                    )
                return
        if scope.cancelled_caught:
            self.logger.warning(
                "systemd did not take %r within %gs; dropped it",
                message,
                _SEND_TIMEOUT,
            )
        else:
            self.failing = False


@final
class SystemdNotifier:
    """Reports a supervisor to systemd; made by `notify`.

    Use it as an async context manager around the supervisor's run, or
    supervise it as a service of that supervisor (its name is
    ``"systemd-notify"``):

        supervisor = Supervisor(config)
        supervisor.add(systemd.notify(supervisor))
        await supervisor.run()

    As a service it counts in the ``STATUS=`` line, and its ``STOPPING=1``
    goes out when the supervisor begins its shutdown.
    """

    name = "systemd-notify"
    """Its name as a service."""

    def __init__(self, supervisor: Supervisor, status_interval: float) -> None:
        self._supervisor = supervisor
        self._status_interval = status_interval
        self._block: AbstractAsyncContextManager[None] | None = None

    def __repr__(self) -> str:
        return f"<SystemdNotifier of {self._supervisor!r}>"

    async def run(self) -> None:
        """Notify systemd until cancelled; send ``STOPPING=1`` on the way out.

        Without ``NOTIFY_SOCKET``, wait until cancelled and send nothing.
        """
        sock = self._open_socket()
        if sock is None:
            await trio.sleep_forever()
            return
        await self._notify(sock)

    async def __aenter__(self) -> SystemdNotifier:
        if self._block is not None:
            raise RuntimeError(f"{self!r} is in use already")
        block = self._background()
        await block.__aenter__()
        self._block = block
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        block, self._block = self._block, None
        assert block is not None
        await block.__aexit__(exc_type, exc, tb)

    @asynccontextmanager
    async def _background(self) -> AsyncIterator[None]:
        sock = self._open_socket()
        if sock is None:
            yield
            return
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._notify, sock, name="systemd notifier")
                try:
                    yield
                finally:
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The block's own exception, not one wrapped by our nursery.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise

    def _open_socket(self) -> _Socket | None:
        logger = self._supervisor._logger
        try:
            address = _notify_address(os.environ.get("NOTIFY_SOCKET"))
        except ValueError as exc:
            logger.warning("not notifying systemd: %s", exc)
            return None
        if address is None:
            return None
        return _Socket(address, logger)

    def __watchdog_interval(self) -> float | None:
        try:
            return _watchdog_interval(
                os.environ.get("WATCHDOG_USEC"), os.environ.get("WATCHDOG_PID")
            )
        except ValueError as exc:
            self._supervisor._logger.warning("no watchdog keep-alives: %s", exc)
            return None

    async def _notify(self, sock: _Socket) -> None:
        with sock.sock:
            session = _Session(self._supervisor, sock, self._status_interval)
            unsubscribe = self._supervisor._observe(session.changed)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(session.watch_phases)
                    await session.loop(self.__watchdog_interval())
            finally:
                unsubscribe()
                if not session.stopping_sent:
                    await session.send_stopping()


@final
class _Session:
    """What one notifier run has told systemd, and what it has to tell next."""

    __slots__ = (
        "last_status",
        "ready_sent",
        "sock",
        "status_due",
        "status_interval",
        "stopping_sent",
        "supervisor",
        "wake",
    )

    def __init__(
        self, supervisor: Supervisor, sock: _Socket, status_interval: float
    ) -> None:
        self.supervisor = supervisor
        self.sock = sock
        self.status_interval = status_interval
        self.wake = trio.Event()
        self.ready_sent = False
        self.stopping_sent = False
        self.last_status: str | None = None
        self.status_due = (
            trio.current_time() + status_interval if supervisor.statuses() else math.inf
        )

    def changed(self, update: StatusUpdate) -> None:
        """A status changed: report it at most ``status_interval`` from now."""
        if self.status_due == math.inf:
            self.status_due = trio.current_time() + self.status_interval
            self.wake.set()

    async def watch_phases(self) -> None:
        supervisor = self.supervisor
        await supervisor.wait_phase(Phase.RUNNING)
        self.wake.set()
        await supervisor.wait_phase(Phase.STOPPING)
        self.wake.set()

    async def send_stopping(self) -> None:
        # Shielded: the shutdown that makes us send it also cancels us.
        with trio.CancelScope(shield=True):
            await self.sock.send("STOPPING=1")
        self.stopping_sent = True

    async def loop(self, ping_interval: float | None) -> None:
        """Send each message when it is due, in a fixed order within one instant:
        READY, STOPPING, WATCHDOG, STATUS."""
        supervisor = self.supervisor
        next_ping = math.inf
        if ping_interval is not None:
            next_ping = trio.current_time() + ping_interval
        while True:
            phase = supervisor.phase
            if not self.ready_sent and phase is Phase.RUNNING:
                self.ready_sent = True
                await self.sock.send("READY=1")
            if not self.stopping_sent and phase >= Phase.STOPPING:
                await self.send_stopping()
            now = trio.current_time()
            if ping_interval is not None and now >= next_ping:
                # Sent from the Trio run that drives the supervisor: a loop
                # blocked by a synchronous call sends nothing.
                if supervisor.running:
                    await self.sock.send("WATCHDOG=1")
                while next_ping <= now:
                    next_ping += ping_interval
            if now >= self.status_due:
                self.status_due = math.inf
                line = _status_line(supervisor.statuses())
                if line != self.last_status:
                    self.last_status = line
                    await self.sock.send(f"STATUS={line}")
            self.wake = trio.Event()
            with trio.move_on_at(min(next_ping, self.status_due)):
                await self.wake.wait()


def notify(
    supervisor: Supervisor,
    *,
    status_interval: float | timedelta = DEFAULT_STATUS_INTERVAL,
) -> SystemdNotifier:
    """Report ``supervisor`` to systemd while the block (or the service) runs.

    When the environment has ``NOTIFY_SOCKET`` (an absolute path, or
    ``@name`` for an abstract socket), it sends over a Unix datagram socket:

    * ``READY=1`` once the supervisor reaches `Phase.RUNNING` (every
      service started), once;
    * ``STOPPING=1`` once it reaches `Phase.STOPPING`, or when the
      block exits or the service is cancelled, whichever comes first;
    * ``STATUS=<counts>``, such as ``STATUS=2 running, 1 error``, the number
      of services in each status, ``status_interval`` seconds after a change
      (changes in between are reported together; unchanged text is not sent
      again);
    * ``WATCHDOG=1`` every half of ``WATCHDOG_USEC``, counted from the start,
      while the supervisor runs and the Trio loop is responsive (none when
      ``WATCHDOG_PID`` names another process).

    Without ``NOTIFY_SOCKET`` it sends nothing; a malformed variable is
    logged as a WARNING on the supervisor's logger, and so is a message
    systemd does not take: notifying never fails the application. As a block
    around the supervisor's run:

        supervisor = Supervisor(config)
        async with systemd.notify(supervisor):
            await supervisor.run()

    or as a service of the supervisor it reports, added before its run:

        supervisor = Supervisor(config)
        supervisor.add(systemd.notify(supervisor))
        await supervisor.run()

    Leaving the block (or the service being cancelled) stops the
    notifications; an exception in the block propagates unchanged.

    Args:
        supervisor: The supervisor to report.
        status_interval: Seconds (or a ``timedelta``) from a status change to
            its ``STATUS=`` line; at most one line per interval.

    Raises:
        TypeError: ``supervisor`` is not a `Supervisor`,
            or ``status_interval`` is not a number of seconds.
        ValueError: ``status_interval`` is not positive.
    """
    if not isinstance(supervisor, Supervisor):
        raise TypeError(
            f"supervisor must be a trio_supervisor.Supervisor, got {supervisor!r}"
        )
    interval = _util.positive_seconds("status_interval", status_interval)
    return SystemdNotifier(supervisor, interval)
