"""Status update listeners: every change in order, own tasks, coalescing, failures
and shutdown."""

from __future__ import annotations

import gc
import itertools
import logging
import tracemalloc

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
    new_service,
)

IDLE, RUNNING, STOPPED = Status.IDLE, Status.RUNNING, Status.STOPPED
ERROR = Status.ERROR


async def forever() -> None:
    await trio.sleep_forever()


async def fail_after_one_second() -> None:
    await trio.sleep(1)
    raise ValueError("failed")


async def return_after_one_second() -> None:
    await trio.sleep(1)


def table(snapshot: list[StatusUpdate]) -> list[tuple[int, str, Status, float]]:
    return [(u.service_id, u.service_name, u.status, u.time) for u in snapshot]


class TestEveryChange:
    """Behaviour 4: after every change, the full snapshot as it stood, in order."""

    async def test_one_service_failing_twice(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A listener of one service that fails twice sees Idle, Running, Error,
        Idle, Running, Error."""
        config = Config(
            services=[new_service("s", fail_after_one_second)],
            restart_interval=5,
            status_update_listeners=[recorder],
        )
        await run_for(10, config)
        assert [table(s) for s in recorder.snapshots] == [
            [(0, "s", IDLE, 0.0)],
            [(0, "s", RUNNING, 0.0)],
            [(0, "s", ERROR, 1.0)],
            [(0, "s", IDLE, 6.0)],
            [(0, "s", RUNNING, 6.0)],
            [(0, "s", ERROR, 7.0)],
        ]
        errors = [s[0].err for s in recorder.snapshots if s[0].err is not None]
        assert [str(e) for e in errors] == ["failed", "failed"]
        assert errors[0] is not errors[1]

    async def test_each_snapshot_is_the_whole_table_at_that_change(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """Snapshots list every service that has an update, indexed by id."""
        config = Config(
            services=[
                new_service("a", forever),
                new_service("b", fail_after_one_second),
            ],
            restart_interval=10,
            status_update_listeners=[recorder],
        )
        await run_for(2, config)
        snapshots = recorder.snapshots
        # Each snapshot is the one before it with exactly one update changed or
        # added, in id order: the table as it stood at that change.
        for before, after in itertools.pairwise(snapshots):
            assert [u.service_id for u in after] == list(range(len(after)))
            changed = [
                u
                for u in after
                if u.service_id >= len(before) or before[u.service_id] is not u
            ]
            assert len(changed) == 1
        assert table(snapshots[0]) == [(0, "a", IDLE, 0.0)]
        assert [u.status for u in snapshots[1]] in ([RUNNING], [IDLE, IDLE])
        assert recorder.transitions(0) == [
            ("a", IDLE, 0.0),
            ("a", RUNNING, 0.0),
            ("a", STOPPED, 2.0),
        ]
        assert recorder.transitions(1) == [
            ("b", IDLE, 0.0),
            ("b", RUNNING, 0.0),
            ("b", ERROR, 1.0),
        ]
        assert table(snapshots[-2]) == [(0, "a", RUNNING, 0.0), (1, "b", ERROR, 1.0)]
        assert table(snapshots[-1]) == [(0, "a", STOPPED, 2.0), (1, "b", ERROR, 1.0)]
        assert len({id(s) for s in recorder.snapshots}) == len(recorder.snapshots)

    async def test_sync_and_async_listeners_see_the_same_sequence(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """An ``async def`` listener is awaited and sees what a plain one sees."""
        received: list[tuple[float, list[StatusUpdate]]] = []

        async def async_listener(snapshot: list[StatusUpdate]) -> None:
            await trio.sleep(0.25)
            received.append((trio.current_time(), snapshot))

        config = Config(
            services=[new_service("s", fail_after_one_second)],
            restart_interval=2,
            status_update_listeners=[async_listener, recorder],
        )
        await run_for(3.5, config)
        assert [s for _, s in received] == recorder.snapshots
        assert [s[0].status for s in recorder.snapshots] == [
            IDLE,
            RUNNING,
            ERROR,
            IDLE,
            RUNNING,
            STOPPED,
        ]
        # Each call took 0.25 s of the run's clock: the listener was awaited.
        assert [t for t, _ in received] == [0.25, 0.5, 1.25, 3.25, 3.5, 3.75]


class TestSlowListener:
    """A slow listener delays nothing but itself."""

    async def test_slow_listener_delays_no_service_and_no_other_listener(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """With a listener taking 100 s per snapshot, services restart on time and
        a fast listener gets each change at the moment it happens."""
        fast: list[tuple[float, list[StatusUpdate]]] = []
        slow: list[list[StatusUpdate]] = []

        def fast_listener(snapshot: list[StatusUpdate]) -> None:
            fast.append((trio.current_time(), snapshot))

        async def slow_listener(snapshot: list[StatusUpdate]) -> None:
            await trio.sleep(100)
            slow.append(snapshot)

        config = Config(
            services=[new_service("s", fail_after_one_second)],
            restart_interval=1,
            status_update_listeners=[slow_listener, fast_listener],
            listener_shutdown_timeout=0,
        )
        await run_for(6.5, config)
        assert [table(s) for _, s in fast] == [
            [(0, "s", IDLE, 0.0)],
            [(0, "s", RUNNING, 0.0)],
            [(0, "s", ERROR, 1.0)],
            [(0, "s", IDLE, 2.0)],
            [(0, "s", RUNNING, 2.0)],
            [(0, "s", ERROR, 3.0)],
            [(0, "s", IDLE, 4.0)],
            [(0, "s", RUNNING, 4.0)],
            [(0, "s", ERROR, 5.0)],
            [(0, "s", IDLE, 6.0)],
            [(0, "s", RUNNING, 6.0)],
            [(0, "s", STOPPED, 6.5)],
        ]
        assert all(at == s[0].time for at, s in fast)
        assert slow == []
        assert trio.current_time() == 6.5


class TestCoalescing:
    """Past listener_buffer waiting changes, a listener gets the newest snapshot."""

    @pytest.mark.parametrize(
        ("release_at", "expected"),
        [
            (
                2.5,  # 4 changes wait: exactly the buffer, each is delivered
                [
                    (IDLE, 0.0),
                    (RUNNING, 0.0),
                    (STOPPED, 1.0),
                    (IDLE, 2.0),
                    (RUNNING, 2.0),
                    (STOPPED, 3.0),
                ],
            ),
            (
                3.5,  # 5 changes wait: one past the buffer, coalesced to the newest
                [(IDLE, 0.0), (STOPPED, 3.0)],
            ),
        ],
        ids=["at-the-buffer", "past-the-buffer"],
    )
    async def test_backlog_past_the_buffer_is_coalesced_to_the_newest(
        self,
        autojump_clock: trio.testing.MockClock,
        recorder: Recorder,
        release_at: float,
        expected: list[tuple[Status, float]],
    ) -> None:
        """A listener blocked while more than listener_buffer changes happen gets
        the newest snapshot once instead of the backlog."""
        release = trio.Event()
        seen: list[list[StatusUpdate]] = []

        async def blocked_listener(snapshot: list[StatusUpdate]) -> None:
            seen.append(snapshot)
            await release.wait()

        config = Config(
            services=[new_service("s", return_after_one_second)],
            restart_interval=1,
            listener_buffer=4,
            status_update_listeners=[blocked_listener, recorder],
        )
        supervisor = Supervisor(config)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(supervisor.run)
            await trio.sleep(release_at)
            release.set()
            await trio.sleep(4.5 - release_at)
            nursery.cancel_scope.cancel()
        # Once free, the listener sees every change again, the final one too.
        after = [(IDLE, 4.0), (RUNNING, 4.0), (STOPPED, 4.5)]
        assert [(s[0].status, s[0].time) for s in seen] == [*expected, *after]
        assert [(s[0].status, s[0].time) for s in recorder.snapshots] == [
            (IDLE, 0.0),
            (RUNNING, 0.0),
            (STOPPED, 1.0),
            (IDLE, 2.0),
            (RUNNING, 2.0),
            (STOPPED, 3.0),
            *after,
        ]

    async def test_coalesced_snapshot_is_the_newest_table(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """The snapshot after the backlog holds the very latest update of every
        service."""
        release = trio.Event()
        seen: list[list[StatusUpdate]] = []

        async def blocked_listener(snapshot: list[StatusUpdate]) -> None:
            seen.append(snapshot)
            await release.wait()

        supervisor = Supervisor(
            Config(
                services=[
                    new_service("fail", fail_after_one_second),
                    new_service("steady", forever),
                ],
                restart_interval=0,
                listener_buffer=1,
                status_update_listeners=[blocked_listener],
            )
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(supervisor.run)
            await trio.sleep(10.5)
            newest = supervisor.statuses()
            release.set()
            await trio.testing.wait_all_tasks_blocked()
            assert len(seen) == 2
            assert seen[1] == newest
            assert [u.status for u in newest] == [RUNNING, RUNNING]
            assert newest[0].time == 10.0
            nursery.cancel_scope.cancel()

    async def test_a_blocked_listener_costs_bounded_memory(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A listener blocked through 9000 failures costs what it did after 1000
        (within 16 KiB; keeping each snapshot would cost far more)."""
        release = trio.Event()
        seen: list[list[StatusUpdate]] = []
        measured: dict[int, int] = {}
        starts = 0

        async def blocked_listener(snapshot: list[StatusUpdate]) -> None:
            seen.append(snapshot)
            await release.wait()

        async def crash() -> None:
            nonlocal starts
            starts += 1
            if starts in (1001, 9001):
                gc.collect()
                measured[starts - 1] = tracemalloc.get_traced_memory()[0]
            if starts == 9001:
                release.set()
                raise StopSupervisor
            raise ValueError("crash")

        supervisor = Supervisor(
            Config(
                services=[new_service("crash", crash)],
                restart_interval=1,
                listener_buffer=8,
                status_update_listeners=[blocked_listener],
                # Outside the logging tree: pytest's capture would keep records.
                logger=logging.Logger("test_listeners.memory", logging.CRITICAL),
            )
        )
        tracemalloc.start()
        try:
            await supervisor.run()
        finally:
            tracemalloc.stop()
        assert measured[9000] - measured[1000] < 16 * 1024, measured
        # The first snapshot, then the newest once the listener was free.
        assert [(s[0].status, s[0].time) for s in seen] == [
            (IDLE, 0.0),
            (STOPPED, 9000.0),
        ]
        assert seen[-1] == supervisor.statuses()


class TestFailingListener:
    """A listener that raises is logged and keeps being called."""

    @pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
    async def test_raising_listener_is_logged_and_called_again(
        self,
        autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture,
        recorder: Recorder,
        is_async: bool,
    ) -> None:
        """Each raise is an ERROR record with its traceback; supervision and the
        other listeners go on."""
        calls: list[list[StatusUpdate]] = []
        raised: list[Exception] = []

        def broken(snapshot: list[StatusUpdate]) -> None:
            calls.append(snapshot)
            error = RuntimeError(f"listener failed {len(calls)}")
            raised.append(error)
            raise error

        async def broken_async(snapshot: list[StatusUpdate]) -> None:
            await trio.lowlevel.checkpoint()
            broken(snapshot)

        listener = broken_async if is_async else broken
        logger = logging.getLogger("test_listeners.failing")
        caplog.set_level(logging.ERROR, logger=logger.name)
        config = Config(
            services=[new_service("s", fail_after_one_second)],
            restart_interval=1,
            status_update_listeners=[listener, recorder],
            logger=logger,
        )
        await run_for(2.5, config)
        assert calls == recorder.snapshots
        assert len(calls) == 6
        records = [
            r for r in caplog.records if r.getMessage().startswith("status update")
        ]
        name = listener.__qualname__
        assert [(r.levelno, r.getMessage()) for r in records] == [
            (logging.ERROR, f"status update listener {name} raised")
        ] * 6
        assert [r.exc_info[1] if r.exc_info else None for r in records] == raised

    async def test_listener_failing_once_still_gets_the_later_snapshots(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A listener raising on its first snapshot does not cost the next ones."""
        calls = 0

        def first_call_fails(snapshot: list[StatusUpdate]) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise KeyError("first")

        config = Config(
            services=[new_service("a", forever)],
            status_update_listeners=[first_call_fails, recorder],
            logger=logging.Logger("test_listeners.silent", logging.CRITICAL),
        )
        await run_for(1, config)
        assert calls == len(recorder.snapshots) == 3


class TestShutdown:
    """Behaviour 5: listeners get the final snapshot, within their timeout."""

    async def test_listener_blocked_at_shutdown_is_cancelled_with_a_warning(
        self,
        autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture,
        recorder: Recorder,
    ) -> None:
        """A listener stuck on the final snapshot is cancelled after
        listener_shutdown_timeout, named in a WARNING; run() ends right then."""
        cancelled = False

        async def stuck(snapshot: list[StatusUpdate]) -> None:
            nonlocal cancelled
            if not snapshot[0].status.is_alive:
                try:
                    await trio.sleep_forever()
                except trio.Cancelled:
                    cancelled = True
                    raise

        logger = logging.getLogger("test_listeners.shutdown")
        caplog.set_level(logging.WARNING, logger=logger.name)
        config = Config(
            services=[new_service("a", forever)],
            status_update_listeners=[stuck, recorder],
            listener_shutdown_timeout=3,
            logger=logger,
        )
        caught: BaseException | None = None
        with trio.move_on_after(10):
            try:
                await Supervisor(config).run()
            except BaseException as exc:
                caught = exc
                raise
        assert type(caught) is trio.Cancelled
        assert trio.current_time() == 13.0
        assert cancelled
        assert recorder.transitions()[-1] == ("a", STOPPED, 10.0)
        warnings = [
            (r.levelno, r.getMessage()) for r in caplog.records if r.name == logger.name
        ]
        assert warnings == [
            (
                logging.WARNING,
                f"status update listener(s) {stuck.__qualname__} still busy 3s "
                "into shutdown; cancelling them",
            )
        ]

    async def test_default_listener_shutdown_timeout_is_five_seconds(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Without a setting, a stuck listener holds the shutdown for 5 s."""

        async def stuck(snapshot: list[StatusUpdate]) -> None:
            if not snapshot[0].status.is_alive:
                await trio.sleep_forever()

        config = Config(
            services=[new_service("a", forever)],
            status_update_listeners=[stuck],
            logger=logging.Logger("test_listeners.silent", logging.CRITICAL),
        )
        await run_for(1, config)
        assert trio.current_time() == 6.0

    async def test_listener_finishing_within_the_timeout_is_waited_for(
        self,
        autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A listener needing 2 s of a 3 s timeout gets every last snapshot, and
        run() ends when it is done, without a warning."""
        received: list[tuple[float, list[StatusUpdate]]] = []

        async def slow(snapshot: list[StatusUpdate]) -> None:
            await trio.sleep(1)
            received.append((trio.current_time(), snapshot))

        logger = logging.getLogger("test_listeners.in_time")
        caplog.set_level(logging.WARNING, logger=logger.name)
        config = Config(
            services=[new_service("a", forever), new_service("b", forever)],
            status_update_listeners=[slow],
            listener_shutdown_timeout=3,
            logger=logger,
        )
        # Startup's four changes take the listener until 4.0; the two stops at
        # 4.0 take it until 6.0.
        await run_for(4, config)
        assert trio.current_time() == 6.0
        assert [at for at, _ in received] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        assert [u.status for u in received[-1][1]] == [STOPPED, STOPPED]
        assert [r for r in caplog.records if r.name == logger.name] == []
