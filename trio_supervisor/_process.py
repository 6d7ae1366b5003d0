"""A service that keeps an external program running: its output goes to the
service's logger, its exit status to the service's status."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypedDict, final

import trio

from . import _util
from ._context import current_logger, heartbeat, stop_requested
from ._policy import Backoff, Restart
from ._service import ServiceSpec

if TYPE_CHECKING:
    from typing_extensions import Unpack

DEFAULT_SHUTDOWN_TIMEOUT = 5.0
"""Seconds between SIGTERM and SIGKILL, as `trio.run_process` waits."""
DEFAULT_STDERR_LINES = 20
_MAX_LINE = 65536
"""Longer lines are logged in pieces of this many bytes."""
_DRAIN_TIMEOUT = 2.0
"""Seconds to read what is left in the pipes once the process has exited."""

_Arg = str | bytes | os.PathLike[str] | os.PathLike[bytes]


@final
class ProcessFailed(Exception):
    """The program of a `process_service` exited with a non-zero status,
    or was killed by a signal it was not sent by its supervisor.

    The service is reported `ERROR` with this
    exception, and restarted by its policy:

        for update in supervisor.statuses():
            if isinstance(update.err, ProcessFailed):
                print(update.err.returncode, *update.err.stderr_tail, sep="\\n")

    ``str()`` gives the message followed by the tail of stderr, indented.

    Attributes:
        returncode: The exit status; negative for a signal (``-9``: SIGKILL).
        stderr_tail: The last lines the program wrote to stderr, oldest first,
            without their line endings (at most the service's ``stderr_lines``).
    """

    def __init__(
        self, message: str, returncode: int, stderr_tail: Sequence[str] = ()
    ) -> None:
        tail = tuple(stderr_tail)
        super().__init__(message, returncode, tail)
        self.message = message
        self.returncode = returncode
        self.stderr_tail: tuple[str, ...] = tail

    def __str__(self) -> str:
        if not self.stderr_tail:
            return self.message
        lines = "\n".join(f"    {line}" for line in self.stderr_tail)
        return f"{self.message}; stderr ended with:\n{lines}"


class ProcessServiceOptions(TypedDict, total=False):
    """The options of `ServiceSpec` that
    `process_service` takes as ``**options`` (``shutdown_timeout`` is
    its own argument)."""

    restart: Restart
    backoff: Backoff | None
    ready: bool
    start_timeout: float | timedelta | None
    watchdog: float | timedelta | None


def describe_exit(returncode: int) -> str:
    """``"exited with code 3"``, or ``"was killed by signal SIGKILL"``."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = str(-returncode)
    return f"was killed by signal {name}"


def _check_argv(argv: object) -> tuple[_Arg, ...]:
    if isinstance(argv, (str, bytes)) or not isinstance(argv, Sequence):
        raise TypeError(
            "argv must be a sequence of arguments such as [program, arg, ...], "
            f"got {argv!r}"
        )
    if not argv:
        raise ValueError(f"argv must name a program, got {argv!r}")
    for index, arg in enumerate(argv):
        if not isinstance(arg, (str, bytes, os.PathLike)):
            raise TypeError(f"argv[{index}] must be a str, bytes or path, got {arg!r}")
    return tuple(argv)


def _check_env(env: object) -> dict[str, str] | None:
    if env is None:
        return None
    if not isinstance(env, Mapping):
        raise TypeError(f"env must be a mapping of str to str or None, got {env!r}")
    checked: dict[str, str] = {}
    for key, value in env.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"env must map str to str, got {key!r}: {value!r} in env")
        checked[key] = value
    return checked


def _check_cwd(cwd: object) -> str | bytes | os.PathLike[str] | None:
    if cwd is None or isinstance(cwd, (str, os.PathLike)):
        return cwd
    raise TypeError(f"cwd must be a str, a path or None, got {cwd!r}")


def _signal_group(process: trio.Process, sig: signal.Signals) -> bool:
    """Send ``sig`` to the process and everything in its process group; False
    when the process had exited already."""
    # returncode polls, and reaps, the process: while it is None the process
    # is not reaped, so its pid is still its process group's id.
    if process.returncode is not None:
        return False
    if sys.platform == "win32":
        if sig == signal.SIGTERM:
            process.terminate()
        else:
            process.kill()
        return True
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return False
    return True


def _kill_stragglers(pid: int) -> None:
    """SIGKILL what is left of the process group ``pid`` after its leader exited.

    The group keeps the id while any member lives, so the kernel cannot give
    that id to a new group in between; an empty group is simply not found.
    """
    if sys.platform == "win32":
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


@final
class _ProcessService:
    """One external program, started afresh for each run of its service."""

    __slots__ = ("argv", "cwd", "env", "name", "shutdown_timeout", "stderr_lines")

    def __init__(
        self,
        name: str,
        argv: tuple[_Arg, ...],
        env: dict[str, str] | None,
        cwd: str | bytes | os.PathLike[str] | None,
        shutdown_timeout: float,
        stderr_lines: int,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.shutdown_timeout = shutdown_timeout
        self.stderr_lines = stderr_lines

    def __repr__(self) -> str:
        return f"<process service {self.name!r}: {list(self.argv)!r}>"

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the program once, until it exits or the service is stopped."""
        logger = current_logger()
        stopping = stop_requested()
        if stopping.is_set():
            await trio.lowlevel.checkpoint()
            return
        process = await trio.lowlevel.open_process(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            cwd=self.cwd,
            # A group of its own: signals reach the program's children too,
            # and a terminal's Ctrl-C reaches only the supervisor.
            start_new_session=sys.platform != "win32",
        )
        pid = process.pid
        stdout, stderr = process.stdout, process.stderr
        assert stdout is not None
        assert stderr is not None
        extra = {"pid": pid}
        logger.info(
            "process %d started: %s", pid, _command_line(self.argv), extra=extra
        )
        tail: deque[str] = deque(maxlen=self.stderr_lines)
        returncode: int | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump, stdout, "stdout", pid, logger, None)
                nursery.start_soon(_pump, stderr, "stderr", pid, logger, tail)
                terminator = trio.CancelScope()
                nursery.start_soon(self._terminate, terminator, process, stopping)
                task_status.started()
                returncode = await process.wait()
                terminator.cancel()
                _kill_stragglers(pid)
                # The pipes close once every holder has exited; one that
                # escaped the process group must not keep this run alive.
                nursery.cancel_scope.deadline = trio.current_time() + _DRAIN_TIMEOUT
            if nursery.cancel_scope.cancelled_caught:
                logger.warning(
                    "output of process %d still open %gs after it exited; "
                    "a process it started holds it",
                    pid,
                    _DRAIN_TIMEOUT,
                    extra=extra,
                )
        finally:
            with trio.CancelScope(shield=True):
                if returncode is None:
                    # Cancelled (at the end of the shutdown timeout, by a
                    # watchdog or a start timeout) or failed while the program
                    # runs: it must not outlive its service.
                    if _signal_group(process, signal.SIGKILL):
                        logger.warning(
                            "process %d still running when its service ended; "
                            "sent SIGKILL",
                            pid,
                            extra=extra,
                        )
                    killed = await process.wait()
                    _kill_stragglers(pid)
                    logger.info(
                        "process %d %s", pid, describe_exit(killed), extra=extra
                    )
                await stdout.aclose()
                await stderr.aclose()
        logger.info("process %d %s", pid, describe_exit(returncode), extra=extra)
        if returncode == 0 or stopping.is_set():
            return
        raise ProcessFailed(
            f"process {self.name!r} (pid {pid}) {describe_exit(returncode)}",
            returncode,
            tail,
        )

    async def _terminate(
        self, scope: trio.CancelScope, process: trio.Process, stopping: trio.Event
    ) -> None:
        """At the stop request: SIGTERM, then SIGKILL after the shutdown
        timeout; ``scope`` is cancelled when the process exits."""
        with scope:
            await stopping.wait()
            if not _signal_group(process, signal.SIGTERM):
                return
            logger = current_logger()
            extra = {"pid": process.pid}
            logger.info("process %d: sent SIGTERM", process.pid, extra=extra)
            await trio.sleep(self.shutdown_timeout)
            if _signal_group(process, signal.SIGKILL):
                logger.warning(
                    "process %d did not exit within %gs of SIGTERM; sent SIGKILL",
                    process.pid,
                    self.shutdown_timeout,
                    extra=extra,
                )


def _command_line(argv: tuple[_Arg, ...]) -> str:
    return " ".join(repr(os.fsdecode(arg)) for arg in argv)


async def _pump(
    stream: trio.abc.ReceiveStream,
    name: str,
    pid: int,
    logger: logging.LoggerAdapter[Any],
    tail: deque[str] | None,
) -> None:
    """Log each line of ``stream`` as it comes; keep the last ones in ``tail``."""
    extra = {"stream": name, "pid": pid}
    pending = bytearray()

    def emit(raw: bytes | bytearray) -> None:
        line = raw.rstrip(b"\r").decode("utf-8", errors="backslashreplace")
        logger.info("%s: %s", name, line, extra=extra)
        if tail is not None:
            tail.append(line)

    async for chunk in stream:
        heartbeat()  # output shows the program is alive, for a ``watchdog``
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            emit(pending[start:end])
            start = end + 1
        del pending[:start]
        while len(pending) >= _MAX_LINE:
            emit(pending[:_MAX_LINE])
            del pending[:_MAX_LINE]
    if pending:
        emit(pending)


def process_service(
    name: str,
    argv: Sequence[_Arg],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    shutdown_timeout: float | timedelta = DEFAULT_SHUTDOWN_TIMEOUT,
    stderr_lines: int = DEFAULT_STDERR_LINES,
    **options: Unpack[ProcessServiceOptions],
) -> ServiceSpec:
    """A service named ``name`` that runs the program ``argv`` for each run.

    Each line the program writes is logged at INFO through the service's
    logger (`current_logger`) as ``"stdout: <line>"``
    or ``"stderr: <line>"``, with the extra record fields ``stream`` and
    ``pid``. Its exit ends the run: status 0 is
    `STOPPED`, anything else (a signal
    included) is `ERROR` with
    `ProcessFailed`. The restart policy then applies as to any
    service:

        worker = process_service(
            "worker",
            [sys.executable, "-m", "myapp.worker"],
            env={**os.environ, "WORKER_THREADS": "4"},
            shutdown_timeout=10,
            restart=Restart.PERMANENT,
        )
        async with open_supervisor(Config(services=[worker])) as supervisor:
            ...

    The program runs in a process group (session) of its own, stdin from
    ``/dev/null``. When the supervisor asks the service to stop, the group
    gets SIGTERM, then SIGKILL if the program has not exited within
    ``shutdown_timeout`` seconds, which is also the service's
    ``shutdown_timeout``; the run ends STOPPED whatever the exit status. A
    run cancelled without a stop request (``watchdog``, ``start_timeout``)
    sends SIGKILL at once. In every case the run waits for the program to
    exit, and kills what is left of its process group, so no process outlives
    its service.

    With ``ready=True`` the service is RUNNING once the program has been
    started; with a ``watchdog``, every piece of output counts as a
    `heartbeat`.

    Args:
        name: The service's name.
        argv: The program and its arguments; no shell is involved.
        env: The program's whole environment; ``None``: the supervisor's.
        cwd: The program's working directory; ``None``: the supervisor's.
        shutdown_timeout: Seconds (or a ``timedelta``) from SIGTERM to SIGKILL.
        stderr_lines: How many of the last stderr lines
            `ProcessFailed.stderr_tail` keeps.
        **options: The other options of `ServiceSpec`.

    Returns:
        The service, ready to be put in ``Config.services`` or given to
        `add`.

    Raises:
        TypeError: An argument has the wrong type (``argv`` as one string
            included: split it with `shlex.split`).
        ValueError: ``name`` or ``argv`` is empty, or a number is out of range.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {name!r}")
    if not name:
        raise ValueError(f"name must not be empty, got {name!r}")
    checked_argv = _check_argv(argv)
    checked_env = _check_env(env)
    checked_cwd = _check_cwd(cwd)
    timeout = _util.seconds("shutdown_timeout", shutdown_timeout)
    lines = _util.integer("stderr_lines", stderr_lines, minimum=0)
    service = _ProcessService(
        name, checked_argv, checked_env, checked_cwd, timeout, lines
    )
    return ServiceSpec(service, shutdown_timeout=timeout, **options)
