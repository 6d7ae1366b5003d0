"""A property test of the whole supervisor: hypothesis writes a program of random
services, options and steps, which runs in one ``trio.run`` on an autojump
``MockClock``; an oracle built from the documented rules checks every status
update as it arrives, and the snapshots, after each step.

Hypothesis' stateful tests are synchronous and a Trio run cannot be paused from
outside, so the machine is generated whole (as a list of steps) and shrunk as a
list. The budget is ``TRIO_SUPERVISOR_PROPERTY_EXAMPLES`` programs (50 by
default; ``nox -s soak`` runs 1,000).
"""

from __future__ import annotations

import logging
import os
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import trio
import trio.testing
from conftest import Recorder
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from trio_supervisor import (
    Backoff,
    Config,
    DoNotRestart,
    Phase,
    Restart,
    RestartIntensityExceeded,
    ServiceSpec,
    Status,
    StatusUpdate,
    Supervisor,
    new_service,
)

IDLE, RUNNING, STOPPED, ERROR, PANIC = (
    Status.IDLE,
    Status.RUNNING,
    Status.STOPPED,
    Status.ERROR,
    Status.PANIC,
)
EXAMPLES = int(os.environ.get("TRIO_SUPERVISOR_PROPERTY_EXAMPLES", "50"))
INF = float("inf")
QUIET = logging.getLogger("test_stateful.quiet")
QUIET.setLevel(logging.CRITICAL + 1)  # thousands of failures: format none of them
QUIET.propagate = False

# Dyadic durations keep every sum exact in binary floating point, so times
# compare with ==, as the supervisor promises ("to the float").
DURATIONS = (0.25, 0.5, 1.0, 2.0, 3.0)

End = Literal["return", "error", "panic", "do-not-restart", "fatal"]


class Crash(BaseException):
    """The application's own BaseException: PANIC, not fatal to the supervisor."""


# --- programs ----------------------------------------------------------------


@dataclass(frozen=True)
class RunScript:
    """One run: end this many seconds after it begins (None: only when stopped)."""

    end_after: float | None
    end: End


@dataclass(frozen=True)
class BackoffParams:
    initial: float
    multiplier: float
    maximum: float
    jitter: float
    reset_after: float
    seed: int

    def build(self) -> Backoff:
        return Backoff(
            self.initial,
            multiplier=self.multiplier,
            maximum=self.maximum,
            jitter=self.jitter,
            reset_after=self.reset_after,
            rng=random.Random(self.seed),
        )


@dataclass(frozen=True)
class Kind:
    """A random service: its runs (cycled), readiness and restart options."""

    runs: tuple[RunScript, ...]
    ready_after: float | None
    restart: Restart
    backoff: BackoffParams | None


@dataclass(frozen=True)
class Advance:
    seconds: float


@dataclass(frozen=True)
class Add:
    kind: Kind


@dataclass(frozen=True)
class Remove:
    pick: int
    """Index into the services not removed yet, modulo their number."""


Step = Advance | Add | Remove


@dataclass(frozen=True)
class Program:
    services: tuple[Kind, ...]
    steps: tuple[Step, ...]
    restart_interval: float
    max_restarts: int | None
    max_seconds: float
    individual_stop: bool = True
    """False: no removal of a running service is possible, so none is tried."""


run_scripts = st.builds(
    RunScript,
    end_after=st.none() | st.sampled_from(DURATIONS),
    # "fatal" tears everything down: keep it rare so programs run on.
    end=st.sampled_from(["return", "error", "panic", "do-not-restart"] * 4 + ["fatal"]),
)


@st.composite
def backoffs(draw: st.DrawFn) -> BackoffParams:
    initial = draw(st.sampled_from([0.25, 0.5, 1.0]))
    return BackoffParams(
        initial=initial,
        multiplier=draw(st.sampled_from([1.0, 1.5, 2.0])),
        maximum=draw(st.sampled_from([initial, 2.0, 4.0])),
        jitter=draw(st.sampled_from([0.0, 0.0, 0.5])),
        reset_after=draw(st.sampled_from([0.5, 1.0, 2.0, 60.0])),
        seed=draw(st.integers(0, 2**16)),
    )


kinds = st.builds(
    Kind,
    runs=st.lists(run_scripts, min_size=1, max_size=3).map(tuple),
    ready_after=st.none() | st.sampled_from((0.0, *DURATIONS)),
    restart=st.sampled_from(list(Restart)),
    backoff=st.none() | backoffs(),
)
steps = st.one_of(
    st.builds(Advance, st.sampled_from((*DURATIONS, 5.0))),
    st.builds(Add, kinds),
    st.builds(Remove, st.integers(0, 7)),
)


@st.composite
def programs(draw: st.DrawFn) -> Program:
    intensity = draw(st.booleans())
    return Program(
        services=tuple(draw(st.lists(kinds, max_size=4))),
        steps=tuple(draw(st.lists(steps, max_size=12))),
        restart_interval=draw(st.sampled_from([0.0, 0.25, 1.0, 2.5])),
        max_restarts=draw(st.sampled_from([0, 1, 3, 6])) if intensity else None,
        max_seconds=draw(st.sampled_from([0.0, 1.0, 2.5, 10.0])),
        individual_stop=draw(st.booleans()),
    )


# --- the oracle --------------------------------------------------------------


@dataclass
class Track:
    """The oracle's view of one service."""

    kind: Kind
    initial: bool
    backoff: Backoff | None
    """A twin of the service's backoff, with a twin generator."""
    last: StatusUpdate | None = None
    runs: int = 0
    run_start: float = 0.0
    running_at: float | None = None
    attempt: int = 0
    restart_at: float | None = None
    stop_at: float | None = None
    """When the supervisor asked it to stop (removal or shutdown)."""
    released_at: float | None = None
    """When the next service of the initial start could be scheduled."""


class Violation(AssertionError):
    pass


@dataclass
class Oracle:
    """Checks each update against the documented rules, in the order they came."""

    program: Program
    tracks: dict[int, Track] = field(default_factory=dict)
    shutdown_at: float | None = None
    error: BaseException | type[BaseException] | None = None
    """What run() must raise: SystemExit, or the expected intensity failures."""
    failures: list[StatusUpdate] | None = None
    restarts: deque[StatusUpdate] = field(default_factory=deque)
    removed: set[int] = field(default_factory=set)

    def track(self, service_id: int, kind: Kind, *, initial: bool) -> None:
        twin = None if kind.backoff is None else kind.backoff.build()
        self.tracks[service_id] = Track(kind, initial, twin)

    def stop_requested(self, service_id: int, now: float) -> None:
        track = self.tracks[service_id]
        if track.stop_at is None:
            track.stop_at = now

    def shutdown(self, now: float) -> None:
        if self.shutdown_at is None:
            self.shutdown_at = now
            for service_id in self.tracks:
                self.stop_requested(service_id, now)

    def check(self, condition: bool, update: StatusUpdate, why: str) -> None:
        if not condition:
            raise Violation(f"{why}: {update!r}; {self.tracks[update.service_id]!r}")

    def see(self, update: StatusUpdate) -> None:
        track = self.tracks[update.service_id]
        previous = track.last
        t = update.time
        kind = track.kind
        if update.status is IDLE:
            if previous is None:
                self.check(track.stop_at is None, update, "started after its stop")
                if track.initial:
                    self.check_initial_order(update)
            else:
                self.check(
                    not previous.status.is_alive, update, "IDLE while still alive"
                )
                self.check(
                    track.restart_at == t, update, "restarted not at the policy's time"
                )
            track.restart_at = None
            track.runs += 1
            track.run_start = t
            track.running_at = None
            if kind.ready_after is None:
                track.released_at = t
        elif update.status is RUNNING:
            self.check(
                previous is not None and previous.status is IDLE,
                update,
                "RUNNING not after IDLE",
            )
            delay = kind.ready_after or 0.0
            self.check(t == track.run_start + delay, update, "RUNNING at a wrong time")
            track.running_at = t
            if track.released_at is None:
                track.released_at = t
        else:
            self.check(
                previous is not None and previous.status.is_alive,
                update,
                "an end without a run",
            )
            self.see_end(track, update)
        track.last = update

    def check_initial_order(self, update: StatusUpdate) -> None:
        """Initial services start in id order, each once the one before it is
        running (or has ended its first run)."""
        earlier = [
            track
            for service_id, track in self.tracks.items()
            if track.initial and service_id < update.service_id
        ]
        for track in earlier:
            if track.last is None and track.stop_at is None:
                raise Violation(f"started before an earlier service: {update!r}")
        if earlier and earlier[-1].released_at is not None:
            self.check(
                update.time >= earlier[-1].released_at,
                update,
                "started before the one before it was ready",
            )

    def see_end(self, track: Track, update: StatusUpdate) -> None:
        t = update.time
        script = track.kind.runs[(track.runs - 1) % len(track.kind.runs)]
        natural = (
            INF if script.end_after is None else track.run_start + script.end_after
        )
        if track.released_at is None:
            track.released_at = t
        stopped = track.stop_at is not None
        if stopped:
            # Asked to stop before this update came: it ends at once, with no
            # shutdown timeout, and is never restarted.
            self.check(t == track.stop_at, update, "ended late after its stop")
        by_stop = stopped and update.status is STOPPED and update.err is None
        if not by_stop:
            self.check(t == natural, update, "an end at a wrong time")
            self.check_natural_end(script.end, update)
        if stopped:
            return
        if script.end == "fatal":
            if self.error is None:
                self.error = SystemExit
            self.shutdown(t)
            return
        policy = track.kind.restart
        if (
            policy is Restart.TEMPORARY
            or (policy is Restart.TRANSIENT and update.status is STOPPED)
            or script.end == "do-not-restart"
        ):
            return
        limit = self.program.max_restarts
        if limit is not None:
            window = self.program.max_seconds
            while self.restarts and t - self.restarts[0].time > window:
                self.restarts.popleft()
            if len(self.restarts) >= limit:
                if self.error is None:
                    self.error = RestartIntensityExceeded
                    self.failures = [*self.restarts, update]
                self.shutdown(t)
                return
            self.restarts.append(update)
        backoff = track.backoff
        if backoff is None:
            delay = self.program.restart_interval
        else:
            ran = None if track.running_at is None else t - track.running_at
            if ran is not None and ran >= backoff.reset_after:
                track.attempt = 0
            delay = backoff.delay(track.attempt)
            track.attempt += 1
        track.restart_at = t + delay

    def check_natural_end(self, end: End, update: StatusUpdate) -> None:
        err = update.err
        if end == "return":
            self.check(update.status is STOPPED and err is None, update, "return")
        elif end == "do-not-restart":
            ok = update.status is STOPPED and isinstance(err, DoNotRestart)
            self.check(ok, update, "DoNotRestart")
        elif end == "error":
            ok = update.status is ERROR and isinstance(err, ValueError)
            self.check(ok, update, "an Exception")
        elif end == "panic":
            ok = update.status is PANIC and isinstance(err, Crash)
            self.check(ok, update, "a BaseException")
        else:
            ok = update.status is PANIC and isinstance(err, SystemExit)
            self.check(ok, update, "SystemExit")

    def table(self) -> list[StatusUpdate]:
        return [
            track.last
            for service_id, track in sorted(self.tracks.items())
            if track.last is not None and service_id not in self.removed
        ]


# --- running a program -------------------------------------------------------


@dataclass
class World:
    """The services' side: what each service does, and how many bodies run."""

    inside: int = 0

    async def body(
        self,
        kind: Kind,
        runs: list[int],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        self.inside += 1
        try:
            script = kind.runs[runs[0] % len(kind.runs)]
            runs[0] += 1
            start = trio.current_time()
            end_at = INF if script.end_after is None else start + script.end_after
            if kind.ready_after is not None and start + kind.ready_after <= end_at:
                await trio.sleep_until(start + kind.ready_after)
                task_status.started()
            await trio.sleep_until(end_at)
            if script.end == "error":
                raise ValueError("failed")
            if script.end == "panic":
                raise Crash("crashed")
            if script.end == "do-not-restart":
                raise DoNotRestart("done")
            if script.end == "fatal":
                raise SystemExit(1)
        finally:
            self.inside -= 1

    def service(self, name: str, kind: Kind) -> ServiceSpec:
        return new_service(
            name,
            self.body,
            kind,
            [0],
            ready=kind.ready_after is not None,
            restart=kind.restart,
            backoff=None if kind.backoff is None else kind.backoff.build(),
        )


def all_tasks() -> set[trio.lowlevel.Task]:
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


async def execute(program: Program) -> None:
    world = World()
    oracle = Oracle(program)
    recorder = Recorder()
    supervisor = Supervisor(
        Config(
            services=[
                world.service(f"s{n}", kind) for n, kind in enumerate(program.services)
            ],
            status_update_listeners=[recorder],
            restart_interval=program.restart_interval,
            max_restarts=program.max_restarts,
            max_seconds=None if program.max_restarts is None else program.max_seconds,
            logger=QUIET,
            individual_stop=program.individual_stop,
        )
    )
    for n, kind in enumerate(program.services):
        oracle.track(n, kind, initial=True)
    observed: list[StatusUpdate] = []

    violations: list[Violation] = []

    def observe(update: StatusUpdate) -> None:
        # The supervisor logs what its observers raise: keep the first
        # violation to raise it from the test.
        observed.append(update)
        if violations:
            return
        try:
            oracle.see(update)
            if oracle.shutdown_at is None and supervisor.phase >= Phase.STOPPING:
                raise Violation(f"the supervisor stopped unasked at {update!r}")
        except Violation as violation:
            violations.append(violation)

    supervisor._observe(observe)
    before = all_tasks()
    raised: BaseException | None = None
    next_id = len(program.services)

    def check_tables() -> None:
        if violations:
            raise violations[0]
        assert supervisor.statuses() == oracle.table()

    async def supervise() -> None:
        nonlocal raised
        try:
            await supervisor.run()
        except (RestartIntensityExceeded, SystemExit) as exc:
            raised = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervise)
        await trio.testing.wait_all_tasks_blocked()
        for step in program.steps:
            if not supervisor.running:
                break
            now = trio.current_time()
            if isinstance(step, Advance):
                await trio.sleep(step.seconds)
                await trio.testing.wait_all_tasks_blocked()
                check_tables()
                if recorder.snapshots:
                    assert recorder.snapshots[-1] == supervisor.statuses()
            elif isinstance(step, Add):
                spec = world.service(f"s{next_id}", step.kind)
                if supervisor.phase >= Phase.STOPPING:
                    continue  # add() refuses, tested elsewhere
                oracle.track(next_id, step.kind, initial=False)
                assert supervisor.add(spec) == next_id
                next_id += 1
                check_tables()
            else:
                present = sorted(set(oracle.tracks) - oracle.removed)
                if not present or not program.individual_stop:
                    continue
                service_id = present[step.pick % len(present)]
                oracle.stop_requested(service_id, now)
                oracle.removed.add(service_id)
                await supervisor.remove(service_id)
                assert trio.current_time() == now
                check_tables()
        oracle.shutdown(trio.current_time())
        supervisor.stop()
    # After the stop: nothing alive, nothing running, every change seen.
    check_tables()
    assert not any(update.status.is_alive for update in supervisor.statuses())
    assert world.inside == 0
    assert all_tasks() == before
    assert recorder.transitions() == [
        (u.service_name, u.status, u.time) for u in observed
    ]
    if recorder.snapshots:
        assert recorder.snapshots[-1] == supervisor.statuses()
    for service_id, track in oracle.tracks.items():
        if track.restart_at is not None and track.last is not None:
            # Waiting for a restart when stopped: its last status stays.
            assert track.stop_at is not None
            assert track.restart_at >= track.stop_at, service_id
    if oracle.error is None:
        assert raised is None
    else:
        assert type(raised) is oracle.error
        if isinstance(raised, RestartIntensityExceeded):
            assert oracle.failures is not None
            assert len(raised.failures) == len(oracle.failures)
            assert all(
                a is b for a, b in zip(raised.failures, oracle.failures, strict=True)
            )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(programs())
# Shrunk counterexamples found by this test (each one a defect until fixed):
# a service added while an earlier ready one is starting, out of id order...
@example(
    Program(
        services=(
            Kind((RunScript(None, "return"),), 0.25, Restart.PERMANENT, None),
            Kind((RunScript(None, "return"),), None, Restart.PERMANENT, None),
        ),
        steps=(
            Add(Kind((RunScript(None, "return"),), None, Restart.PERMANENT, None)),
            Advance(0.25),
        ),
        restart_interval=0.0,
        max_restarts=None,
        max_seconds=0.0,
    )
)
# ...and a backoff reset by runs that never reached RUNNING.
@example(
    Program(
        services=(
            Kind((RunScript(None, "return"),), None, Restart.PERMANENT, None),
            Kind(
                (RunScript(0.5, "return"),),
                1.0,
                Restart.PERMANENT,
                BackoffParams(0.25, 1.5, 2.0, 0.0, 0.5, 0),
            ),
        ),
        steps=(Advance(2.0),),
        restart_interval=0.0,
        max_restarts=None,
        max_seconds=0.0,
    )
)
def test_random_programs_follow_the_documented_rules(program: Program) -> None:
    """Random services, options, time steps, adds, removes and a final stop keep
    every documented invariant at every step."""
    trio.run(execute, program, clock=trio.testing.MockClock(autojump_threshold=0))


async def forever() -> None:
    await trio.sleep_forever()


async def ready_after_one_second(
    *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    await trio.sleep(1)
    task_status.started()
    await trio.sleep_forever()


async def test_a_service_added_during_startup_keeps_snapshots_in_id_order(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A service added while an earlier ready service is still starting takes
    its place by id in statuses() and in the snapshots, as documented."""
    supervisor = Supervisor(
        Config(
            services=[
                new_service("slow", ready_after_one_second, ready=True),
                new_service("after", forever),
            ],
            status_update_listeners=[recorder],
        )
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervisor.run)
        await trio.testing.wait_all_tasks_blocked()
        assert supervisor.add(new_service("added", forever)) == 2
        await trio.sleep(2)
        assert [u.service_id for u in supervisor.statuses()] == [0, 1, 2]
        assert [u.service_id for u in recorder.snapshots[-1]] == [0, 1, 2]
        supervisor.stop()


async def test_backoff_does_not_reset_after_runs_that_never_were_running(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A ready service whose runs end before started() never stayed RUNNING, so
    its backoff keeps growing however long each run took."""

    async def fails_before_ready(
        *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        await trio.sleep(0.5)

    config = Config(
        services=[
            new_service(
                "never-ready",
                fails_before_ready,
                ready=True,
                backoff=Backoff(0.25, maximum=4.0, reset_after=0.5),
            )
        ],
        status_update_listeners=[recorder],
    )
    supervisor = Supervisor(config)
    with trio.move_on_after(6):
        await supervisor.run()
    idles = [t for _, status, t in recorder.transitions(0) if status is IDLE]
    # Ends at 0.5, 1.25, 2.25, 3.75; delays 0.25, 0.5, 1, 2.
    assert idles == [0.0, 0.75, 1.75, 3.25, 5.75]
