"""process_service: real child processes, their output, exit statuses and stops.

These tests run real programs, so they use the real clock: each is bounded by
``trio.fail_after`` and waits for events (log lines, status changes, process
exits), never for fixed delays.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from conftest import Recorder

from trio_supervisor import (
    Config,
    ProcessFailed,
    Restart,
    ServiceSpec,
    Status,
    StatusUpdate,
    Supervisor,
    WatchdogTimeout,
    open_supervisor,
    process_service,
)

PY = sys.executable
TIMEOUT = 15.0
"""Seconds any one test may take, real time."""

_logger_ids = itertools.count()

posix_only = pytest.mark.skipif(
    sys.platform == "win32", reason="process groups and signals are POSIX"
)


class Lines(logging.Handler):
    """Keeps every record; lets a test wait for a message."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logging.DEBUG)
        self.logger = logger
        self.records: list[logging.LogRecord] = []
        self._changed = trio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._changed.set()

    def messages(self, stream: str | None = None) -> list[str]:
        """Every message, or those of the program's ``stream``, without prefix."""
        if stream is None:
            return [record.getMessage() for record in self.records]
        prefix = f"{stream}: "
        return [
            record.getMessage().removeprefix(prefix)
            for record in self.records
            if getattr(record, "stream", None) == stream
        ]

    def pid(self) -> int:
        """The pid of the (first) program started."""
        return int(next(r.__dict__["pid"] for r in self.records if "pid" in r.__dict__))

    async def wait_for(self, predicate: Callable[[str], bool]) -> str:
        """The first message that ``predicate`` accepts, once logged."""
        seen = 0
        while True:
            for record in self.records[seen:]:
                message = record.getMessage()
                if predicate(message):
                    return message
            seen = len(self.records)
            self._changed = trio.Event()
            await self._changed.wait()


@pytest.fixture
def lines() -> Iterator[Lines]:
    logger = logging.getLogger(f"tests.process.{next(_logger_ids)}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = Lines(logger)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@dataclass
class Watch(Recorder):
    """A recorder whose test can wait for a service to reach a status."""

    changed: trio.Event = field(default_factory=trio.Event)

    def __call__(self, snapshot: list[StatusUpdate]) -> None:
        super().__call__(snapshot)
        self.changed.set()

    async def until(self, name: str, status: Status, count: int = 1) -> StatusUpdate:
        """The ``count``-th update of ``name`` to ``status``, once it came."""
        while True:
            seen = 0
            last: dict[int, StatusUpdate] = {}
            for snapshot in self.snapshots:
                for update in snapshot:
                    if last.get(update.service_id) is update:
                        continue
                    last[update.service_id] = update
                    if update.service_name == name and update.status is status:
                        seen += 1
                        if seen == count:
                            return update
            self.changed = trio.Event()
            await self.changed.wait()


@pytest.fixture
def watch() -> Watch:
    return Watch()


@asynccontextmanager
async def supervising(
    lines: Lines, watch: Watch, *services: ServiceSpec, **config: Any
) -> AsyncIterator[Supervisor]:
    """A supervisor of ``services`` logging to ``lines``, within the test's bound."""
    with trio.fail_after(TIMEOUT):
        async with open_supervisor(
            Config(
                services=services,
                status_update_listeners=[watch],
                logger=lines.logger,
                **config,
            )
        ) as supervisor:
            yield supervisor


def python(code: str) -> list[str]:
    return [PY, "-c", code]


def pid_alive(pid: int) -> bool:
    """True while ``pid`` is a process that has not exited (a zombie has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        return True
    return state not in ("Z", "X")


async def wait_exited(pid: int) -> None:
    """Return once ``pid`` has exited; it need not be our child."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        await trio.lowlevel.wait_readable(fd)
    finally:
        os.close(fd)


needs_pidfd = pytest.mark.skipif(
    not hasattr(os, "pidfd_open"), reason="waits for a grandchild with a pidfd"
)


# --- exits -----------------------------------------------------------------------


async def test_clean_exit_is_stopped_and_every_line_is_logged(
    lines: Lines, watch: Watch
) -> None:
    """Exit 0 ends the run STOPPED; each stdout and stderr line is logged."""
    code = "import sys; print('hello'); print('world'); print('oops', file=sys.stderr)"
    service = process_service("job", python(code), restart=Restart.TEMPORARY)
    async with supervising(lines, watch, service):
        end = await watch.until("job", Status.STOPPED)
    assert end.err is None
    assert watch.statuses(0) == [Status.IDLE, Status.RUNNING, Status.STOPPED]
    assert lines.messages("stdout") == ["hello", "world"]
    assert lines.messages("stderr") == ["oops"]
    record = next(r for r in lines.records if r.getMessage() == "stdout: hello")
    assert record.levelno == logging.INFO
    assert record.__dict__["service_name"] == "job"
    assert record.__dict__["service_id"] == 0
    assert isinstance(record.__dict__["pid"], int)


async def test_failing_exit_is_an_error_with_the_code_and_stderr_tail(
    lines: Lines, watch: Watch
) -> None:
    """A non-zero exit is ERROR with ProcessFailed carrying the code and the
    last stderr lines."""
    code = (
        "import sys\n"
        "for n in range(5): print(f'line {n}', file=sys.stderr)\n"
        "sys.exit(3)"
    )
    service = process_service(
        "job", python(code), stderr_lines=2, restart=Restart.TEMPORARY
    )
    async with supervising(lines, watch, service):
        end = await watch.until("job", Status.ERROR)
    err = end.err
    assert isinstance(err, ProcessFailed)
    assert err.returncode == 3
    assert err.stderr_tail == ("line 3", "line 4")
    assert lines.messages("stderr") == [f"line {n}" for n in range(5)]
    message = str(err)
    assert message.startswith("process 'job' (pid ")
    assert message.endswith(
        ") exited with code 3; stderr ended with:\n    line 3\n    line 4"
    )


@posix_only
async def test_death_by_signal_is_an_error_naming_the_signal(
    lines: Lines, watch: Watch
) -> None:
    """A program killed by a signal it was not sent by its supervisor is ERROR."""
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    service = process_service("job", python(code), restart=Restart.TEMPORARY)
    async with supervising(lines, watch, service):
        end = await watch.until("job", Status.ERROR)
    err = end.err
    assert isinstance(err, ProcessFailed)
    assert err.returncode == -signal.SIGKILL
    assert err.stderr_tail == ()
    assert str(err).endswith(") was killed by signal SIGKILL")


async def test_a_program_that_cannot_start_is_an_error(
    lines: Lines, watch: Watch, tmp_path: Path
) -> None:
    """A missing program ends the run ERROR with the OSError of its start."""
    service = process_service(
        "job", [str(tmp_path / "missing")], restart=Restart.TEMPORARY
    )
    async with supervising(lines, watch, service):
        end = await watch.until("job", Status.ERROR)
    assert isinstance(end.err, FileNotFoundError)


async def test_a_failing_program_is_restarted_by_its_policy(
    lines: Lines, watch: Watch, tmp_path: Path
) -> None:
    """A TRANSIENT program that fails is started again; a clean exit ends it."""
    counter = tmp_path / "runs"
    code = (
        "import pathlib, sys\n"
        f"path = pathlib.Path({str(counter)!r})\n"
        "runs = int(path.read_text()) + 1 if path.exists() else 1\n"
        "path.write_text(str(runs))\n"
        "print(f'run {runs}')\n"
        "sys.exit(0 if runs == 3 else 1)"
    )
    service = process_service("job", python(code), restart=Restart.TRANSIENT)
    async with supervising(lines, watch, service):
        await watch.until("job", Status.STOPPED)
    assert watch.statuses(0) == [
        *(Status.IDLE, Status.RUNNING, Status.ERROR) * 2,
        Status.IDLE,
        Status.RUNNING,
        Status.STOPPED,
    ]
    assert lines.messages("stdout") == ["run 1", "run 2", "run 3"]
    assert counter.read_text() == "3"


async def test_env_and_cwd_are_the_programs(
    lines: Lines, watch: Watch, tmp_path: Path
) -> None:
    """``env`` is the program's whole environment and ``cwd`` its directory."""
    code = "import os; print(os.getcwd()); print(sorted(os.environ.get('X_', '-')))"
    env = {"X_": "ab"}
    if "SYSTEMROOT" in os.environ:  # Windows needs it to start Python
        env["SYSTEMROOT"] = os.environ["SYSTEMROOT"]
    service = process_service(
        "job", python(code), env=env, cwd=tmp_path, restart=Restart.TEMPORARY
    )
    async with supervising(lines, watch, service):
        await watch.until("job", Status.STOPPED)
    assert lines.messages("stdout") == [str(tmp_path), "['a', 'b']"]


async def test_ready_service_is_running_once_the_program_started(
    lines: Lines, watch: Watch
) -> None:
    """With ready=True the next service starts only once the program runs."""
    code = "import time; print('up', flush=True); time.sleep(60)"
    first = process_service("first", python(code), ready=True, shutdown_timeout=0)
    second = process_service("second", python(code), shutdown_timeout=0)
    async with supervising(lines, watch, first, second):
        await lines.wait_for(lambda m: m == "stdout: up")
    assert [(name, status) for name, status, _ in watch.transitions()[:4]] == [
        ("first", Status.IDLE),
        ("first", Status.RUNNING),
        ("second", Status.IDLE),
        ("second", Status.RUNNING),
    ]


# --- output ----------------------------------------------------------------------


async def test_a_flood_of_output_is_read_without_stalling(
    lines: Lines, watch: Watch
) -> None:
    """Output far beyond a pipe's buffer is read as it comes, every line logged."""
    count = 20_000
    code = (
        "import sys\n"
        f"for n in range({count}): sys.stdout.write(f'{{n:06d}} ' + 'x' * 90 + '\\n')\n"
        "sys.stdout.flush()\n"
        "print('done', file=sys.stderr)"
    )
    service = process_service("flood", python(code), restart=Restart.TEMPORARY)
    async with supervising(lines, watch, service):
        end = await watch.until("flood", Status.STOPPED)
    assert end.err is None
    out = lines.messages("stdout")
    assert len(out) == count
    assert out[0] == "000000 " + "x" * 90
    assert out[-1] == f"{count - 1:06d} " + "x" * 90
    assert lines.messages("stderr") == ["done"]


async def test_partial_last_line_and_undecodable_bytes_are_logged(
    lines: Lines, watch: Watch
) -> None:
    """A last line without newline is logged; bad UTF-8 is escaped; CRLF trimmed."""
    code = "import sys; sys.stdout.buffer.write(b'a\\r\\n\\xff-b\\nno newline')"
    service = process_service("job", python(code), restart=Restart.TEMPORARY)
    async with supervising(lines, watch, service):
        await watch.until("job", Status.STOPPED)
    assert lines.messages("stdout") == ["a", "\\xff-b", "no newline"]


# --- stopping --------------------------------------------------------------------


@posix_only
async def test_stop_sends_sigterm_and_the_run_is_stopped(
    lines: Lines, watch: Watch
) -> None:
    """Stopping the service sends SIGTERM; the program's death by it is STOPPED."""
    code = "import time; print('up', flush=True); time.sleep(60)"
    service = process_service("job", python(code), shutdown_timeout=10)
    async with supervising(lines, watch, service) as supervisor:
        await lines.wait_for(lambda m: m == "stdout: up")
        stopped_at = trio.current_time()
        supervisor.stop()
        end = await watch.until("job", Status.STOPPED)
    assert end.err is None
    assert end.time - stopped_at < 5
    messages = lines.messages()
    assert any(m.endswith(": sent SIGTERM") for m in messages)
    assert any(m.endswith(" was killed by signal SIGTERM") for m in messages)
    assert not any("SIGKILL" in m for m in messages)


@posix_only
async def test_a_program_ignoring_sigterm_is_killed_after_the_timeout(
    lines: Lines, watch: Watch
) -> None:
    """A program that ignores SIGTERM gets SIGKILL ``shutdown_timeout`` later."""
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('up', flush=True)\n"
        "time.sleep(60)"
    )
    service = process_service("stubborn", python(code), shutdown_timeout=0.5)
    async with supervising(lines, watch, service) as supervisor:
        await lines.wait_for(lambda m: m == "stdout: up")
        pid = lines.pid()
        stopped_at = trio.current_time()
        supervisor.stop()
        end = await watch.until("stubborn", Status.STOPPED)
    assert 0.5 <= end.time - stopped_at < 2.5
    assert end.err is None
    messages = lines.messages()
    assert any(m.endswith(" was killed by signal SIGKILL") for m in messages)
    assert any("SIGKILL" in m and m.startswith(f"process {pid}") for m in messages)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@posix_only
@needs_pidfd
@pytest.mark.parametrize(
    "grandchild_setup",
    ["", "signal.signal(signal.SIGTERM, signal.SIG_IGN); "],
    ids=["grandchild-obeys-sigterm", "grandchild-ignores-sigterm"],
)
async def test_cancelling_the_supervisor_leaves_no_process_behind(
    lines: Lines, watch: Watch, grandchild_setup: str
) -> None:
    """Cancelling a supervisor's run ends the program and the processes it
    started, those ignoring SIGTERM as soon as the program has exited."""
    grandchild_code = (
        f"import os, signal, time; {grandchild_setup}"
        "print(os.getpid(), flush=True); time.sleep(60)"
    )
    code = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {grandchild_code!r}])\n"
        "time.sleep(60)"
    )
    service = process_service("parent", python(code), shutdown_timeout=5)
    supervisor = Supervisor(
        Config(services=[service], status_update_listeners=[watch], logger=lines.logger)
    )
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(supervisor.run)
            line = await lines.wait_for(lambda m: m.startswith("stdout: "))
            cancelled_at = trio.current_time()
            nursery.cancel_scope.cancel()
        assert trio.current_time() - cancelled_at < 5  # not the SIGKILL timeout
        grandchild = int(line.removeprefix("stdout: "))
        with pytest.raises(ProcessLookupError):
            os.kill(lines.pid(), 0)
        await wait_exited(grandchild)
    assert not pid_alive(grandchild)
    assert watch.statuses(0)[-1] is Status.STOPPED


@posix_only
async def test_a_watchdog_timeout_kills_the_silent_program_at_once(
    lines: Lines, watch: Watch
) -> None:
    """A run cancelled without a stop request sends SIGKILL and waits for the exit."""
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('up', flush=True)\n"
        "time.sleep(60)"
    )
    service = process_service(
        "silent",
        python(code),
        watchdog=0.5,
        shutdown_timeout=30,
        restart=Restart.TEMPORARY,
    )
    async with supervising(lines, watch, service):
        end = await watch.until("silent", Status.ERROR)
    assert isinstance(end.err, WatchdogTimeout)
    pid = lines.pid()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert any(
        m == f"process {pid} still running when its service ended; sent SIGKILL"
        for m in lines.messages()
    )


async def test_output_feeds_the_watchdog(lines: Lines, watch: Watch) -> None:
    """Each piece of output counts as a heartbeat for the service's watchdog."""
    code = (
        "import time\n"
        "for n in range(6):\n"
        "    print(n, flush=True)\n"
        "    time.sleep(0.25)"
    )
    service = process_service(
        "chatty", python(code), watchdog=1.0, restart=Restart.TEMPORARY
    )
    async with supervising(lines, watch, service):
        end = await watch.until("chatty", Status.STOPPED)
    assert end.err is None
    assert lines.messages("stdout") == [str(n) for n in range(6)]


# --- arguments -------------------------------------------------------------------


def test_the_spec_carries_the_options_and_the_shutdown_timeout() -> None:
    """The service's shutdown_timeout is the SIGTERM-to-SIGKILL time."""
    spec = process_service(
        "job", ["true"], shutdown_timeout=3, restart=Restart.TRANSIENT
    )
    assert isinstance(spec, ServiceSpec)
    assert spec.name == "job"
    assert spec.shutdown_timeout == 3.0
    assert spec.restart is Restart.TRANSIENT
    assert repr(spec.service) == "<process service 'job': ['true']>"


def test_process_failed_keeps_its_fields_through_pickling() -> None:
    """ProcessFailed can cross a process boundary with its fields."""
    import pickle

    err = ProcessFailed("process 'x' (pid 1) exited with code 2", 2, ["a"])
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.returncode, copy.stderr_tail, str(copy)) == (
        2,
        ("a",),
        str(err),
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": 1}, TypeError, r"^name must be a str, got 1$"),
        ({"name": ""}, ValueError, r"^name must not be empty, got ''$"),
        (
            {"argv": "ls -l"},
            TypeError,
            r"^argv must be a sequence of arguments such as \[program, arg, \.\.\.\], "
            r"got 'ls -l'$",
        ),
        ({"argv": []}, ValueError, r"^argv must name a program, got \[\]$"),
        (
            {"argv": ["ls", 3]},
            TypeError,
            r"^argv\[1\] must be a str, bytes or path, got 3$",
        ),
        (
            {"env": ["X=1"]},
            TypeError,
            r"^env must be a mapping of str to str or None, got \['X=1'\]$",
        ),
        ({"env": {"X": 1}}, TypeError, r"^env must map str to str, got 'X': 1 in env$"),
        ({"cwd": 5}, TypeError, r"^cwd must be a str, a path or None, got 5$"),
        (
            {"shutdown_timeout": -1},
            ValueError,
            r"^shutdown_timeout must be a finite number of seconds >= 0, got -1$",
        ),
        (
            {"shutdown_timeout": "5"},
            TypeError,
            r"^shutdown_timeout must be a number of seconds or a datetime\.timedelta, "
            r"got '5'$",
        ),
        ({"stderr_lines": -1}, ValueError, r"^stderr_lines must be >= 0, got -1$"),
        ({"stderr_lines": True}, TypeError, r"^stderr_lines must be an int, got True$"),
        ({"ready": "yes"}, TypeError, r"^ready must be a bool, got 'yes'$"),
    ],
    ids=lambda value: str(value) if isinstance(value, dict) else "",
)
def test_arguments_are_checked_up_front(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Bad arguments raise at once, naming the argument and showing the value."""
    arguments: dict[str, Any] = {"name": "job", "argv": ["true"], **kwargs}
    with pytest.raises(error, match=message):
        process_service(**arguments)
