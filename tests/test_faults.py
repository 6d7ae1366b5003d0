"""Fault injection: every way a service or a listener can misbehave, at every point
of a service's lifecycle, with the status sequence, the exact times, the updates a
listener that keeps up receives, the tasks left over and where the error surfaced.

Every case runs the same two services under one supervisor on the autojump clock:

- ``other`` (id 0) starts at once and ends when asked to stop. At the
  ``restart-delay`` point its first run returns at t=2, so it waits for its
  restart (``restart_interval`` 2) from t=2 to t=4 while the fault strikes at t=3.
- ``faulty`` (id 1), a ``ready=True`` service: its first run misbehaves at the
  point under test, every later run sleeps 1 s, calls ``task_status.started()``
  and ends when asked to stop.

The caller's cancel scope has a deadline at t=10. At the ``graceful-stop`` point
``supervisor.stop()`` is called at t=2 with ``shutdown_timeout`` 2, and ``faulty``
misbehaves at t=3, one second after its stop request and before its cancellation.
At ``listener-delivery`` an async listener spends 2.5 s in the call that delivers
``faulty``'s RUNNING (t=1 to t=3.5), so the fault at t=3 strikes mid-delivery.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing
from conftest import Recorder

from trio_supervisor import (
    Config,
    Status,
    StatusUpdate,
    StatusUpdateListener,
    Supervisor,
    new_service,
    stop_requested,
)

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup

IDLE, RUNNING, STOPPED, ERROR, PANIC = (
    Status.IDLE,
    Status.RUNNING,
    Status.STOPPED,
    Status.ERROR,
    Status.PANIC,
)

DEADLINE = 10.0
"""When the caller's cancel scope cancels run()."""
INTERVAL = 2.0
"""restart_interval of every case."""
GRACEFUL_STOP_AT = 2.0
GRACEFUL_TIMEOUT = 2.0
LISTENER_SHUTDOWN_TIMEOUT = 5.0
SHIELD_FOR = 3.0
SLOW_CALL = 0.5
BUSY_FROM, BUSY_FOR = 1.0, 2.5


class Crash(BaseException):
    """A BaseException of the application's own, not an Exception."""


# --- the table ---------------------------------------------------------------

POINTS = (
    "idle",
    "starting",
    "running",
    "restart-delay",
    "graceful-stop",
    "listener-delivery",
)
SERVICE_FAULTS = (
    "exception",
    "exception-group",
    "base-exception",
    "keyboard-interrupt",
    "system-exit",
    "return-value",
    "shield",
    "started-twice",
    "cancel",
)
NOT_STARTED_FAULTS = ("never-started-hangs", "never-started-returns")
"""Only meaningful before ``started()``: at ``idle`` and ``starting``."""
LISTENER_FAULTS = ("listener-raises", "listener-blocks", "listener-slow")
LISTENER_POINTS = ("idle", "running", "restart-delay", "graceful-stop")
FATAL = {"keyboard-interrupt": KeyboardInterrupt, "system-exit": SystemExit}

SERVICE_FAULT_TIME = {
    "idle": 0.0,
    "starting": 1.0,
    "running": 3.0,
    "restart-delay": 3.0,
    "graceful-stop": 3.0,
    "listener-delivery": 3.0,
}
LISTENER_FAULT_TIME = {
    "idle": 0.0,
    "running": 1.0,
    "restart-delay": 2.0,
    "graceful-stop": 2.0,
}

CASES = [
    *((fault, point) for fault in SERVICE_FAULTS for point in POINTS),
    *((fault, point) for fault in NOT_STARTED_FAULTS for point in POINTS[:2]),
    *((fault, point) for fault in LISTENER_FAULTS for point in LISTENER_POINTS),
]

Steps = list[tuple[Status, float]]


@dataclass
class Expected:
    """What the documentation says a case does."""

    other: Steps
    faulty: Steps
    fault_status: Status | None
    """The status the fault itself is reported with (None: not a service fault)."""
    surfaced: type[BaseException] | None
    """What run() raises (None: it returns)."""
    warnings: list[tuple[float, str]]
    services_end: float


def expect(fault: str, point: str) -> Expected:
    """The documented outcome of ``fault`` at ``point``, derived from the rules of
    DESIGN.md one by one."""
    graceful = point == "graceful-stop"
    warnings: list[tuple[float, str]] = []
    fault_status: Status | None = None
    if fault in LISTENER_FAULTS:
        # A misbehaving listener never changes what the services do.
        shutdown = GRACEFUL_STOP_AT if graceful else DEADLINE
        faulty: Steps = [(IDLE, 0.0), (RUNNING, 1.0), (STOPPED, shutdown)]
        surfaced: type[BaseException] | None = None if graceful else trio.Cancelled
    else:
        at = SERVICE_FAULT_TIME[point]
        started = point not in ("idle", "starting")
        faulty = [(IDLE, 0.0)] + ([(RUNNING, 1.0)] if started else [])
        restarts = not graceful
        surfaced = None if graceful else trio.Cancelled
        shutdown = GRACEFUL_STOP_AT if graceful else DEADLINE
        if fault in ("exception", "exception-group"):
            fault_status = ERROR
        elif fault == "started-twice":
            if not started:
                faulty.append((RUNNING, at))
            fault_status = ERROR
        elif fault == "base-exception":
            fault_status = PANIC
        elif fault in FATAL:
            # PANIC, then the whole supervisor shuts down and run() raises it.
            fault_status = PANIC
            restarts = False
            surfaced = FATAL[fault]
            if not graceful:
                shutdown = at
        elif fault in ("return-value", "never-started-returns"):
            fault_status = STOPPED
        elif fault == "cancel":
            # The caller cancels run() at the point; a graceful stop under way
            # goes on to its timeout, then run() raises the caller's Cancelled.
            restarts = False
            surfaced = trio.Cancelled
            if graceful:
                faulty.append((STOPPED, GRACEFUL_STOP_AT + GRACEFUL_TIMEOUT))
            else:
                shutdown = at
                faulty.append((STOPPED, at))
        elif fault == "shield":
            # A stop arrives 0.5 s into a 3 s shield (or, during a graceful stop,
            # the cancellation at the end of its timeout): the run ends when the
            # shield does; the slow-stop WARNING comes 1 s after the timeout.
            restarts = False
            if graceful:
                late = GRACEFUL_STOP_AT + GRACEFUL_TIMEOUT + 1
            else:
                shutdown = at + 0.5
                surfaced = trio.Cancelled
                late = shutdown + 1
            faulty.append((STOPPED, at + SHIELD_FOR))
            warnings.append((late, "still waiting for 1 service(s) to stop: faulty"))
        elif fault == "never-started-hangs":
            restarts = False
            faulty.append((STOPPED, DEADLINE))
        else:  # pragma: no cover - the table names every fault above
            raise AssertionError(fault)
        if fault_status is not None:
            faulty.append((fault_status, at))
        if restarts:
            faulty += [(IDLE, at + INTERVAL), (RUNNING, at + INTERVAL + 1)]
            faulty.append((STOPPED, shutdown))
    other: Steps = [(IDLE, 0.0), (RUNNING, 0.0)]
    if graceful:
        other.append((STOPPED, GRACEFUL_STOP_AT))
    elif point == "restart-delay":
        other.append((STOPPED, 2.0))
        # A service waiting for its restart when the shutdown comes keeps its
        # last status.
        if shutdown > 2.0 + INTERVAL:
            other += [(IDLE, 4.0), (RUNNING, 4.0), (STOPPED, shutdown)]
    else:
        other.append((STOPPED, shutdown))
    services_end = max(other[-1][1], faulty[-1][1])
    if fault == "listener-blocks":
        warnings.append(
            (
                services_end + LISTENER_SHUTDOWN_TIMEOUT,
                "status update listener(s) Case.blocking_listener still busy 5s "
                "into shutdown; cancelling them",
            )
        )
    return Expected(other, faulty, fault_status, surfaced, warnings, services_end)


# --- running one case --------------------------------------------------------


class LogRecords(logging.Handler):
    """Keeps (trio time, level, message, exception) of every record."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[float, int, str, BaseException | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        self.records.append(
            (trio.current_time(), record.levelno, record.getMessage(), exc)
        )

    def at(self, level: int) -> list[tuple[float, str]]:
        return [(t, m) for t, lvl, m, _ in self.records if lvl == level]


@pytest.fixture
def log(request: pytest.FixtureRequest) -> Iterator[tuple[logging.Logger, LogRecords]]:
    logger = logging.getLogger(f"test_faults.{request.node.name}")
    handler = LogRecords()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)


@dataclass
class Case:
    """One fault at one point: the services, the listeners, what they saw."""

    fault: str
    point: str
    caller: trio.CancelScope = field(default_factory=trio.CancelScope)
    inside: int = 0
    """Service bodies in progress."""
    faulty_runs: int = 0
    other_runs: int = 0
    raising: list[list[StatusUpdate]] = field(default_factory=list)
    blocking: list[list[StatusUpdate]] = field(default_factory=list)
    slow: list[list[StatusUpdate]] = field(default_factory=list)
    busy: list[list[StatusUpdate]] = field(default_factory=list)
    busy_done = False

    @property
    def listener_fault_time(self) -> float:
        return LISTENER_FAULT_TIME[self.point]

    async def other(self) -> None:
        self.inside += 1
        try:
            self.other_runs += 1
            if self.point == "restart-delay" and self.other_runs == 1:
                await trio.sleep(2)
                return
            await stop_requested().wait()
        finally:
            self.inside -= 1

    async def faulty(self, *, task_status: trio.TaskStatus[None]) -> object:
        self.inside += 1
        try:
            self.faulty_runs += 1
            if self.faulty_runs == 1 and self.fault not in LISTENER_FAULTS:
                return await self.misbehave(task_status)
            await trio.sleep(1)
            task_status.started()
            await stop_requested().wait()
            return None
        finally:
            self.inside -= 1

    async def misbehave(self, task_status: trio.TaskStatus[None]) -> object:
        """The first run of ``faulty``: reach the point, then misbehave."""
        started = False
        if self.point != "idle":
            await trio.sleep(1)
            if self.point != "starting":
                task_status.started()
                started = True
                if self.point == "graceful-stop":
                    await stop_requested().wait()
                    await trio.sleep(1)
                else:
                    await trio.sleep(2)
        fault = self.fault
        if fault == "exception":
            raise ValueError("boom")
        if fault == "exception-group":
            async with trio.open_nursery() as nursery:
                nursery.start_soon(raise_at_once, ValueError("one"))
                nursery.start_soon(raise_at_once, KeyError("two"))
        elif fault == "base-exception":
            raise Crash("custom")
        elif fault == "keyboard-interrupt":
            raise KeyboardInterrupt
        elif fault == "system-exit":
            raise SystemExit(3)
        elif fault == "return-value":
            return 42
        elif fault == "shield":
            if self.point != "graceful-stop":
                self.caller.deadline = trio.current_time() + 0.5
            with trio.CancelScope(shield=True):
                await trio.sleep(SHIELD_FOR)
            await trio.sleep_forever()
        elif fault == "started-twice":
            if not started:
                task_status.started()
            task_status.started()
        elif fault == "cancel":
            self.caller.cancel()
            await trio.sleep_forever()
        elif fault == "never-started-hangs":
            await trio.sleep_forever()
        elif fault == "never-started-returns":
            return None
        raise AssertionError(f"{fault} did not end the run")  # pragma: no cover

    def raising_listener(self, snapshot: list[StatusUpdate]) -> None:
        self.raising.append(snapshot)
        if trio.current_time() >= self.listener_fault_time:
            raise ValueError("listener broke")

    async def blocking_listener(self, snapshot: list[StatusUpdate]) -> None:
        self.blocking.append(snapshot)
        if trio.current_time() >= self.listener_fault_time:
            await trio.sleep_forever()

    async def slow_listener(self, snapshot: list[StatusUpdate]) -> None:
        self.slow.append(snapshot)
        if trio.current_time() >= self.listener_fault_time:
            await trio.sleep(SLOW_CALL)

    async def busy_listener(self, snapshot: list[StatusUpdate]) -> None:
        self.busy.append(snapshot)
        if not self.busy_done and trio.current_time() >= BUSY_FROM:
            self.busy_done = True
            await trio.sleep(BUSY_FOR)


async def raise_at_once(error: Exception) -> None:
    raise error


def all_tasks() -> set[trio.lowlevel.Task]:
    """Every task of the run, from the root down."""
    root = trio.lowlevel.current_root_task()
    assert root is not None
    tasks: set[trio.lowlevel.Task] = set()
    stack = [root]
    while stack:
        task = stack.pop()
        tasks.add(task)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return tasks


def steps(updates: list[StatusUpdate], service_id: int) -> Steps:
    return [(u.status, u.time) for u in updates if u.service_id == service_id]


def slow_listener_finish(updates: list[StatusUpdate], slow_from: float) -> float:
    """When a listener taking SLOW_CALL per call from ``slow_from`` on is done."""
    finish = 0.0
    for update in updates:
        start = max(update.time, finish)
        finish = start + (SLOW_CALL if start >= slow_from else 0.0)
    return finish


@pytest.mark.parametrize(
    ("fault", "point"), CASES, ids=[f"{f}-at-{p}" for f, p in CASES]
)
async def test_fault(
    fault: str,
    point: str,
    autojump_clock: trio.testing.MockClock,
    log: tuple[logging.Logger, LogRecords],
) -> None:
    """The fault at the point gives the documented statuses at exact times, loses
    no update, leaves no task behind and surfaces where the docs say."""
    logger, records = log
    case = Case(fault, point)
    expected = expect(fault, point)
    recorder = Recorder()
    listeners: list[StatusUpdateListener] = [recorder]
    if fault == "listener-raises":
        listeners.append(case.raising_listener)
    elif fault == "listener-blocks":
        listeners.append(case.blocking_listener)
    elif fault == "listener-slow":
        listeners.append(case.slow_listener)
    if point == "listener-delivery":
        listeners.append(case.busy_listener)
    config = Config(
        services=[
            new_service("other", case.other),
            new_service("faulty", case.faulty, ready=True),
        ],
        status_update_listeners=listeners,
        restart_interval=INTERVAL,
        shutdown_timeout=GRACEFUL_TIMEOUT if point == "graceful-stop" else 0,
        listener_shutdown_timeout=LISTENER_SHUTDOWN_TIMEOUT,
        logger=logger,
    )
    supervisor = Supervisor(config)
    observed: list[StatusUpdate] = []
    supervisor._observe(observed.append)
    before = all_tasks()
    surfaced: BaseException | None = None

    async def stop_at(when: float) -> None:
        await trio.sleep_until(when)
        supervisor.stop()

    async with trio.open_nursery() as nursery:
        if point == "graceful-stop":
            nursery.start_soon(stop_at, GRACEFUL_STOP_AT)
        with case.caller:
            case.caller.deadline = DEADLINE
            try:
                await supervisor.run()
            except BaseException as exc:
                surfaced = exc
                if isinstance(exc, trio.Cancelled):
                    raise
        ended = trio.current_time()
        nursery.cancel_scope.cancel()

    # The documented statuses, at exact times.
    assert steps(observed, 0) == expected.other
    assert steps(observed, 1) == expected.faulty

    # A listener that keeps up got every change, one snapshot each, in order,
    # and the last one is the final table.
    assert recorder.transitions() == [
        (u.service_name, u.status, u.time) for u in observed
    ]
    assert len(recorder.snapshots) == len(observed)
    assert recorder.snapshots[-1] == supervisor.statuses()
    assert not any(u.status.is_alive for u in supervisor.statuses())

    # Nothing left running once run() has ended.
    assert case.inside == 0
    assert all_tasks() == before
    assert not supervisor.running

    # The error surfaced where the documentation says.
    fault_update = next(
        (
            u
            for u in observed
            if u.service_id == 1 and u.status is expected.fault_status
        ),
        None,
    )
    if expected.surfaced is None:
        assert surfaced is None
    else:
        assert type(surfaced) is expected.surfaced
    if fault in FATAL:
        assert fault_update is not None
        assert surfaced is fault_update.err
    failures = [
        (t, m) for t, m in records.at(logging.ERROR) if m.startswith("service ")
    ]
    if expected.fault_status in (ERROR, PANIC):
        assert fault_update is not None
        err = fault_update.err
        assert failures == [
            (fault_update.time, f"service faulty (id 1) failed: {fault_update.status}")
        ]
        logged = [
            e
            for _, level, m, e in records.records
            if level == logging.ERROR and m.startswith("service ")
        ]
        assert logged == [err]
        if fault == "exception":
            assert isinstance(err, ValueError)
            assert str(err) == "boom"
        elif fault == "exception-group":
            assert isinstance(err, ExceptionGroup)
            assert sorted(type(e).__name__ for e in err.exceptions) == [
                "KeyError",
                "ValueError",
            ]
        elif fault == "base-exception":
            assert isinstance(err, Crash)
            assert not isinstance(err, BaseExceptionGroup)
        elif fault == "started-twice":
            assert isinstance(err, RuntimeError)
            assert str(err) == "called 'started' twice on the same task status"
        else:
            assert isinstance(err, FATAL[fault])
    else:
        assert failures == []
        if fault_update is not None:
            assert fault_update.err is None
    assert records.at(logging.WARNING) == expected.warnings

    # Listeners: what the misbehaving ones received, and when run() ended.
    end = expected.services_end
    if fault == "listener-raises":
        # Raising never stops it being called: it too saw every change.
        assert case.raising == recorder.snapshots
        raised = [
            t
            for t, m in records.at(logging.ERROR)
            if m == "status update listener Case.raising_listener raised"
        ]
        assert raised == [
            u.time for u in observed if u.time >= LISTENER_FAULT_TIME[point]
        ]
    elif fault == "listener-blocks":
        first = next(
            i for i, u in enumerate(observed) if u.time >= LISTENER_FAULT_TIME[point]
        )
        assert case.blocking == recorder.snapshots[: first + 1]
        end += LISTENER_SHUTDOWN_TIMEOUT
    elif fault == "listener-slow":
        assert case.slow == recorder.snapshots
        end = max(end, slow_listener_finish(observed, LISTENER_FAULT_TIME[point]))
    if point == "listener-delivery":
        assert case.busy == recorder.snapshots
        end = max(end, BUSY_FROM + BUSY_FOR)
    assert ended == end


def test_the_table_covers_each_fault_at_each_point() -> None:
    """The table holds every service fault at every point, the not-started
    faults before started(), and every listener fault at every point it has."""
    assert len(CASES) == len(set(CASES)) == 9 * 6 + 2 * 2 + 3 * 4


async def test_service_added_and_stopped_before_its_first_step_ends_stopped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A service added, then stopped before its task took a step, ends STOPPED in
    the final snapshot, whatever order Trio runs the batch in."""
    for _ in range(30):
        recorder = Recorder()
        supervisor = Supervisor(Config(status_update_listeners=[recorder]))
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            supervisor.add(new_service("late", trio.sleep_forever))
            supervisor.stop()
        now = trio.current_time()
        assert [(u.status, u.time) for u in supervisor.statuses()] == [(STOPPED, now)]
        assert recorder.snapshots[-1] == supervisor.statuses()
