"""The supervisor's core contract: statuses, restarts, panics, cancellation,
startup, open_supervisor, current_logger and memory."""

from __future__ import annotations

import gc
import logging
import tracemalloc
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from conftest import Recorder, run_for

from trio_supervisor import (
    Config,
    Status,
    StatusUpdate,
    StopSupervisor,
    Supervisor,
    current_logger,
    new_service,
    open_supervisor,
)

IDLE, RUNNING, STOPPED = Status.IDLE, Status.RUNNING, Status.STOPPED
ERROR, PANIC = Status.ERROR, Status.PANIC


async def forever() -> None:
    await trio.sleep_forever()


def returns_after(seconds: float) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await trio.sleep(seconds)

    return run


def raises_after(
    seconds: float, make: Callable[[], BaseException]
) -> tuple[Callable[[], Awaitable[None]], list[BaseException]]:
    """A service function that raises a fresh ``make()`` after ``seconds``, and
    the list of what it raised."""
    raised: list[BaseException] = []

    async def run() -> None:
        await trio.sleep(seconds)
        error = make()
        raised.append(error)
        raise error

    return run, raised


class Panic(BaseException):
    """A BaseException that is neither KeyboardInterrupt nor SystemExit."""


class TestStatusSequence:
    """Behaviour 1: IDLE when scheduled, RUNNING when started, then how it ended."""

    async def test_clean_return_is_stopped(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A run that returns is STOPPED, without err, and restarted after the
        interval."""
        config = Config(
            services=[new_service("s", returns_after(1))],
            restart_interval=2,
            status_update_listeners=[recorder],
        )
        supervisor = await run_for(4.5, config)
        assert recorder.transitions() == [
            ("s", IDLE, 0.0),
            ("s", RUNNING, 0.0),
            ("s", STOPPED, 1.0),
            ("s", IDLE, 3.0),
            ("s", RUNNING, 3.0),
            ("s", STOPPED, 4.0),
        ]
        assert all(u.err is None for s in recorder.snapshots for u in s)
        assert supervisor.statuses() == recorder.snapshots[-1]

    async def test_exception_is_error_with_err(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A run that raises an Exception is ERROR with that very exception."""
        fn, raised = raises_after(1, lambda: ValueError("boom"))
        config = Config(
            services=[new_service("e", fn)],
            restart_interval=1,
            status_update_listeners=[recorder],
        )
        await run_for(3.5, config)
        assert recorder.transitions() == [
            ("e", IDLE, 0.0),
            ("e", RUNNING, 0.0),
            ("e", ERROR, 1.0),
            ("e", IDLE, 2.0),
            ("e", RUNNING, 2.0),
            ("e", ERROR, 3.0),
        ]
        errors = [s[0].err for s in recorder.snapshots if s[0].status is ERROR]
        assert len(raised) == 2
        assert errors[0] is raised[0]
        assert errors[-1] is raised[1]

    async def test_base_exception_is_panic_with_err_and_restarted(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A BaseException that is not an Exception is PANIC, and restarted like
        any end."""
        fn, raised = raises_after(1, Panic)
        config = Config(
            services=[new_service("p", fn)],
            restart_interval=0.5,
            status_update_listeners=[recorder],
        )
        supervisor = await run_for(2.6, config)
        assert recorder.transitions() == [
            ("p", IDLE, 0.0),
            ("p", RUNNING, 0.0),
            ("p", PANIC, 1.0),
            ("p", IDLE, 1.5),
            ("p", RUNNING, 1.5),
            ("p", PANIC, 2.5),
        ]
        assert supervisor.statuses()[0].err is raised[-1]

    async def test_services_are_scheduled_in_id_order(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """Every service is IDLE, in id order, before any of them runs."""
        config = Config(
            services=[new_service(n, forever) for n in "abc"],
            status_update_listeners=[recorder],
        )
        await run_for(1, config)
        changes = recorder.transitions()
        idles = [change for change in changes if change[1] is IDLE]
        assert idles == [("a", IDLE, 0.0), ("b", IDLE, 0.0), ("c", IDLE, 0.0)]
        for name in "abc":
            assert [c[1:] for c in changes if c[0] == name] == [
                (IDLE, 0.0),
                (RUNNING, 0.0),
                (STOPPED, 1.0),
            ]
        assert [s.service_id for s in recorder.snapshots[-1]] == [0, 1, 2]


class TestRestartTiming:
    """Behaviour 2: a restart comes exactly restart_interval after the end."""

    @pytest.mark.parametrize(
        ("run_seconds", "interval"),
        [(0.7, 0.1), (0.3, 1e-9), (1000.3, 0.2)],
        ids=["tenths", "nanosecond", "large"],
    )
    async def test_idle_is_the_end_time_plus_the_interval_to_the_float(
        self,
        autojump_clock: trio.testing.MockClock,
        recorder: Recorder,
        run_seconds: float,
        interval: float,
    ) -> None:
        """Each IDLE's time is exactly the previous end's time + the interval."""
        config = Config(
            services=[new_service("s", returns_after(run_seconds))],
            restart_interval=interval,
            status_update_listeners=[recorder],
        )
        await run_for(5 * (run_seconds + interval), config)
        updates = [s[0] for s in recorder.snapshots]
        ends = [u for u in updates if u.status is STOPPED]
        idles = [u for u in updates if u.status is IDLE]
        assert len(ends) >= 4
        for index, idle in enumerate(idles[1:]):
            assert idle.time == ends[index].time + interval
            assert idle.time > ends[index].time

    async def test_stop_counts_as_an_end_like_errors(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """STOPPED, ERROR and PANIC are each followed by a restart after the
        interval."""
        ends = iter([None, ValueError("x"), Panic()])

        async def run() -> None:
            await trio.sleep(1)
            error = next(ends, None)
            if error is not None:
                raise error

        config = Config(
            services=[new_service("s", run)],
            restart_interval=0.25,
            status_update_listeners=[recorder],
        )
        await run_for(4, config)
        assert recorder.transitions() == [
            ("s", IDLE, 0.0),
            ("s", RUNNING, 0.0),
            ("s", STOPPED, 1.0),
            ("s", IDLE, 1.25),
            ("s", RUNNING, 1.25),
            ("s", ERROR, 2.25),
            ("s", IDLE, 2.5),
            ("s", RUNNING, 2.5),
            ("s", PANIC, 3.5),
            ("s", IDLE, 3.75),
            ("s", RUNNING, 3.75),
            ("s", STOPPED, 4.0),
        ]

    async def test_interval_zero_restarts_at_once_yet_lets_others_run(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A service that fails without ever yielding, with interval 0, leaves
        other tasks their turn between its restarts."""
        starts = 0
        seen: list[int] = []

        async def crash() -> None:
            nonlocal starts
            starts += 1
            if starts >= 10_000:
                # Guard: the other task never ran; end the test instead of hanging.
                raise StopSupervisor
            raise ValueError("crash")

        supervisor = Supervisor(
            Config(services=[new_service("crash", crash)], restart_interval=0)
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(supervisor.run)
            for _ in range(20):
                await trio.lowlevel.checkpoint()
                seen.append(starts)
            nursery.cancel_scope.cancel()
        # Restarts and the other task's checkpoints alternate: about one each.
        assert 10 <= seen[-1] < 100
        assert seen == sorted(seen)
        (last,) = supervisor.statuses()
        assert last.time == 0.0
        assert isinstance(last.err, ValueError)


class TestFatalExceptions:
    """Behaviour 3: KeyboardInterrupt and SystemExit are PANIC, then raised."""

    @pytest.mark.parametrize(
        "make",
        [KeyboardInterrupt, lambda: SystemExit(3)],
        ids=["KeyboardInterrupt", "SystemExit"],
    )
    async def test_fatal_exception_is_panic_then_raised_bare(
        self,
        autojump_clock: trio.testing.MockClock,
        recorder: Recorder,
        make: Callable[[], BaseException],
    ) -> None:
        """The service is PANIC, the others are stopped, listeners get the final
        snapshot, and run() raises the very exception, not in a group."""
        fn, raised = raises_after(2, make)
        kind = type(make())
        config = Config(
            services=[new_service("fatal", fn), new_service("other", forever)],
            restart_interval=0,
            status_update_listeners=[recorder],
        )
        supervisor = Supervisor(config)
        with pytest.raises(kind) as excinfo:
            await supervisor.run()
        assert type(excinfo.value) is kind
        assert excinfo.value is raised[0]
        assert trio.current_time() == 2.0
        assert recorder.transitions(0) == [
            ("fatal", IDLE, 0.0),
            ("fatal", RUNNING, 0.0),
            ("fatal", PANIC, 2.0),
        ]
        assert recorder.transitions(1)[-1] == ("other", STOPPED, 2.0)
        final = recorder.snapshots[-1]
        assert [u.status for u in final] == [PANIC, STOPPED]
        assert final[0].err is raised[0]
        assert not supervisor.running


class TestCancellation:
    """Behaviour 5: cancelling run() stops everything, then raises Cancelled."""

    async def test_cancelled_run_raises_bare_cancelled_after_final_snapshot(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """run() raises trio.Cancelled itself once every listener has the final
        snapshot with no service alive."""
        async_snapshots: list[list[StatusUpdate]] = []

        async def async_listener(snapshot: list[StatusUpdate]) -> None:
            await trio.sleep(0.5)
            async_snapshots.append(snapshot)

        fn, _ = raises_after(1, lambda: ValueError("x"))
        config = Config(
            services=[new_service("a", forever), new_service("b", fn)],
            restart_interval=0.5,
            status_update_listeners=[recorder, async_listener],
        )
        supervisor = Supervisor(config)
        caught: BaseException | None = None
        seen_at_end: tuple[list[StatusUpdate], list[StatusUpdate]] | None = None
        with trio.move_on_after(2.2) as scope:
            try:
                await supervisor.run()
            except BaseException as exc:
                caught = exc
                seen_at_end = (recorder.snapshots[-1], async_snapshots[-1])
                raise
        assert scope.cancelled_caught
        assert type(caught) is trio.Cancelled
        assert seen_at_end is not None
        for final in seen_at_end:
            assert [(u.service_name, u.status, u.time) for u in final] == [
                ("a", STOPPED, 2.2),
                ("b", STOPPED, 2.2),
            ]
        assert len(async_snapshots) == len(recorder.snapshots)
        assert async_snapshots == recorder.snapshots
        assert not supervisor.running

    async def test_service_waiting_for_restart_keeps_its_last_status(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A service cancelled during its restart delay stays ERROR, as it ended."""
        fn, raised = raises_after(1, lambda: ValueError("x"))
        config = Config(
            services=[new_service("e", fn)],
            restart_interval=10,
            status_update_listeners=[recorder],
        )
        supervisor = await run_for(5, config)
        assert recorder.transitions() == [
            ("e", IDLE, 0.0),
            ("e", RUNNING, 0.0),
            ("e", ERROR, 1.0),
        ]
        (last,) = supervisor.statuses()
        assert last.err is raised[0]
        assert trio.current_time() == 5.0

    async def test_run_waits_for_each_service_to_stop(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A service that takes 1.5 s to clean up delays the end of run() by that."""

        async def slow_stop() -> None:
            try:
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await trio.sleep(1.5)

        config = Config(
            services=[new_service("slow", slow_stop), new_service("fast", forever)],
            status_update_listeners=[recorder],
        )
        with trio.move_on_after(3):
            await Supervisor(config).run()
        assert trio.current_time() == 4.5
        assert sorted(recorder.transitions()[4:]) == [
            ("fast", STOPPED, 3.0),
            ("slow", STOPPED, 4.5),
        ]

    async def test_run_cancelled_before_it_starts_raises_cancelled_at_once(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A run() called in a cancelled scope starts nothing."""
        supervisor = Supervisor(
            Config(
                services=[new_service("a", forever)],
                status_update_listeners=[recorder],
            )
        )
        with trio.CancelScope() as scope:
            scope.cancel()
            await supervisor.run()
        assert scope.cancelled_caught
        assert recorder.snapshots == []
        assert supervisor.statuses() == []


class TestStartup:
    """nursery.start(supervisor.run) and running twice."""

    async def test_start_returns_once_every_service_is_running(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """start() returns at the moment the last service reports RUNNING."""

        async def ready_later(
            *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
        ) -> None:
            await trio.sleep(2)
            task_status.started()
            await trio.sleep_forever()

        supervisor = Supervisor(
            Config(
                services=[
                    new_service("a", forever),
                    new_service("b", ready_later, ready=True),
                    new_service("c", forever),
                ]
            )
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            assert trio.current_time() == 2.0
            assert [
                (u.service_name, u.status, u.time) for u in supervisor.statuses()
            ] == [
                ("a", RUNNING, 0.0),
                ("b", RUNNING, 2.0),
                ("c", RUNNING, 2.0),
            ]
            nursery.cancel_scope.cancel()

    async def test_start_returns_with_plain_services_running(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """With plain services, start() returns with each one RUNNING, not IDLE."""
        supervisor = Supervisor(
            Config(services=[new_service(n, forever) for n in "abcde"])
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            assert [u.status for u in supervisor.statuses()] == [RUNNING] * 5
            assert supervisor.running
            nursery.cancel_scope.cancel()

    async def test_running_twice_is_a_runtime_error(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A second run() while the first runs is refused; the first goes on."""
        supervisor = Supervisor(Config(services=[new_service("a", forever)]))
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            with pytest.raises(
                RuntimeError, match=r"^supervisor 'supervisor' is already running$"
            ):
                await supervisor.run()
            assert supervisor.running
            assert supervisor.statuses()[0].status is RUNNING
            nursery.cancel_scope.cancel()

    async def test_a_supervisor_can_run_again_after_its_run_ended(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A second run() after the first ended starts the services afresh."""
        supervisor = Supervisor(
            Config(
                services=[new_service("a", forever)],
                status_update_listeners=[recorder],
            )
        )
        with trio.move_on_after(1):
            await supervisor.run()
        with trio.move_on_after(1):
            await supervisor.run()
        assert recorder.transitions() == [
            ("a", IDLE, 0.0),
            ("a", RUNNING, 0.0),
            ("a", STOPPED, 1.0),
            ("a", IDLE, 1.0),
            ("a", RUNNING, 1.0),
            ("a", STOPPED, 2.0),
        ]


class TestStatuses:
    """supervisor.statuses(): the latest update of each service, by id."""

    async def test_statuses_before_during_and_after_a_run(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Empty before the run, the latest update of each service during and after."""
        fn, raised = raises_after(1, lambda: ValueError("x"))
        supervisor = Supervisor(
            Config(
                services=[new_service("a", forever), new_service("b", fn)],
                restart_interval=5,
            )
        )
        assert supervisor.statuses() == []
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            await trio.sleep(2)
            during = supervisor.statuses()
            assert [(u.service_id, u.status, u.time) for u in during] == [
                (0, RUNNING, 0.0),
                (1, ERROR, 1.0),
            ]
            assert during[1].err is raised[0]
            nursery.cancel_scope.cancel()
        after = supervisor.statuses()
        assert [(u.service_id, u.status, u.time) for u in after] == [
            (0, STOPPED, 2.0),
            (1, ERROR, 1.0),
        ]
        assert after[1] is during[1]

    async def test_statuses_is_a_fresh_list(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Changing the returned list does not change the supervisor's."""
        supervisor = await run_for(1, Config(services=[new_service("a", forever)]))
        first = supervisor.statuses()
        first.clear()
        assert len(supervisor.statuses()) == 1


class TestOpenSupervisor:
    """open_supervisor(config): a supervisor running while the block runs."""

    async def test_block_runs_with_every_service_running_and_leaving_stops_them(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """The block sees every service RUNNING; leaving it waits for them to stop."""

        async def slow_stop() -> None:
            try:
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await trio.sleep(0.5)

        config = Config(
            services=[new_service("a", forever), new_service("slow", slow_stop)],
            status_update_listeners=[recorder],
        )
        async with open_supervisor(config) as supervisor:
            assert isinstance(supervisor, Supervisor)
            assert supervisor.running
            assert [u.status for u in supervisor.statuses()] == [RUNNING, RUNNING]
            await trio.sleep(3)
        assert trio.current_time() == 3.5
        assert not supervisor.running
        assert [(u.status, u.time) for u in supervisor.statuses()] == [
            (STOPPED, 3.0),
            (STOPPED, 3.5),
        ]
        assert recorder.snapshots[-1] == supervisor.statuses()

    async def test_exception_in_block_stops_services_and_propagates_bare(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """An exception in the block stops every service, then leaves as itself."""
        error = ValueError("in the block")
        config = Config(
            services=[new_service("a", forever)],
            status_update_listeners=[recorder],
        )
        supervisors: list[Supervisor] = []

        async def block() -> None:
            async with open_supervisor(config) as supervisor:
                supervisors.append(supervisor)
                await trio.sleep(1)
                raise error

        with pytest.raises(ValueError, match=r"^in the block$") as excinfo:
            await block()
        assert excinfo.value is error
        (supervisor,) = supervisors
        assert trio.current_time() == 1.0
        assert not supervisor.running
        assert recorder.transitions() == [
            ("a", IDLE, 0.0),
            ("a", RUNNING, 0.0),
            ("a", STOPPED, 1.0),
        ]

    async def test_cancelling_the_block_stops_services(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """An outer cancellation ends the block and stops every service."""
        config = Config(
            services=[new_service("a", forever)],
            status_update_listeners=[recorder],
        )
        with trio.move_on_after(2) as scope:
            async with open_supervisor(config):
                await trio.sleep_forever()
        assert scope.cancelled_caught
        assert recorder.transitions() == [
            ("a", IDLE, 0.0),
            ("a", RUNNING, 0.0),
            ("a", STOPPED, 2.0),
        ]


class TestCurrentLogger:
    """current_logger(): the supervisor's logger bound to the calling service."""

    async def test_records_carry_service_name_and_id(
        self, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Each service's records name it, beside the caller's own extra fields."""
        logger = logging.getLogger("test_supervisor.current_logger")
        caplog.set_level(logging.INFO, logger=logger.name)

        def service(word: str) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                log = current_logger()
                assert isinstance(log, logging.LoggerAdapter)
                assert log.logger is logger
                log.info("saying %s", word, extra={"word": word})
                await trio.sleep_forever()

            return run

        config = Config(
            services=[
                None,
                new_service("a", service("hi")),
                new_service("b", service("yo")),
            ],
            logger=logger,
        )
        await run_for(1, config)
        said = sorted(
            (
                r.getMessage(),
                r.__dict__["service_name"],
                r.__dict__["service_id"],
                r.__dict__["word"],
            )
            for r in caplog.records
            if r.name == logger.name and r.getMessage().startswith("saying")
        )
        assert said == [("saying hi", "a", 0, "hi"), ("saying yo", "b", 1, "yo")]

    def test_outside_a_service_is_a_runtime_error(self) -> None:
        """Outside a supervised service there is no logger to return."""
        with pytest.raises(
            RuntimeError,
            match=r"^trio_supervisor\.current_logger\(\) must be called inside a "
            r"supervised service$",
        ):
            current_logger()

    async def test_outside_a_service_in_a_supervised_run_is_a_runtime_error(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A task next to a running supervisor is not a service either."""
        supervisor = Supervisor(Config(services=[new_service("a", forever)]))
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            with pytest.raises(RuntimeError, match=r"current_logger\(\) must be"):
                current_logger()
            nursery.cancel_scope.cancel()


class TestMemory:
    """Behaviour 7: no history kept per failure."""

    @pytest.mark.parametrize("interval", [0, 1], ids=["interval-0", "interval-1"])
    async def test_1000_failures_cost_no_more_than_100(
        self, autojump_clock: trio.testing.MockClock, interval: float
    ) -> None:
        """Memory after 9000 failures is within 16 KiB of memory after 1000:
        any per-failure record would cost at least 64 KiB (Trio keeps up to about
        a thousand stale deadline entries, so the first measure is past that)."""
        # A logger outside the logging tree, which pytest's capture cannot reach
        # (its handlers would keep every record): failures are logged, not kept.
        logger = logging.Logger("test_supervisor.memory", logging.DEBUG)
        logger.addHandler(logging.NullHandler())
        measured: dict[int, int] = {}
        changes = 0
        starts = 0

        def count(snapshot: list[StatusUpdate]) -> None:
            nonlocal changes
            changes += 1

        async def crash() -> None:
            nonlocal starts
            starts += 1
            if starts in (1001, 9001):
                gc.collect()
                measured[starts - 1] = tracemalloc.get_traced_memory()[0]
                if starts == 9001:
                    raise StopSupervisor
            raise ValueError(f"failure {starts}")

        config = Config(
            services=[new_service("crash", crash), new_service("idle", forever)],
            status_update_listeners=[count],
            restart_interval=interval,
            logger=logger,
        )
        tracemalloc.start()
        try:
            await Supervisor(config).run()
        finally:
            tracemalloc.stop()
        assert changes > 100
        assert measured[9000] - measured[1000] < 16 * 1024, measured
