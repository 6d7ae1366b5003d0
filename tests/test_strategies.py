"""Strategies: ONE_FOR_ALL and REST_FOR_ONE stop and restart a group of services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from conftest import Recorder, Transition, run_for, transitions_of

from trio_supervisor import (
    Backoff,
    Config,
    Restart,
    RestartIntensityExceeded,
    Status,
    Strategy,
    Supervisor,
    new_service,
    stop_requested,
)

IDLE, RUNNING, STOPPED, ERROR = (
    Status.IDLE,
    Status.RUNNING,
    Status.STOPPED,
    Status.ERROR,
)

ServiceFn = Callable[[], Awaitable[None]]


def fails_on_runs(seconds: float, *runs: int) -> ServiceFn:
    """A service that fails ``seconds`` into each run whose number (from 1) is in
    ``runs``, and otherwise runs until stopped."""
    count = 0

    async def fn() -> None:
        nonlocal count
        count += 1
        if count not in runs:
            await trio.sleep_forever()
        await trio.sleep(seconds)
        raise ValueError(f"run {count}")

    return fn


def lifetime(seconds: float, status: Status, end: float) -> list[tuple[Status, float]]:
    return [(IDLE, seconds), (RUNNING, seconds), (status, end)]


def per_service(recorder: Recorder, service_id: int) -> list[tuple[Status, float]]:
    return [(s, t) for _, s, t in recorder.transitions(service_id)]


def idles_at(recorder: Recorder, time: float) -> list[str]:
    """The names of the services scheduled at ``time``, in the order recorded."""
    return [n for n, s, t in recorder.transitions() if s is IDLE and t == time]


class TestOneForAll:
    """ONE_FOR_ALL: one service's restart stops and restarts every service."""

    async def test_failure_restarts_every_service_in_id_order(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """b fails at 2: a and c stop at 2; a, b, c start again at 3 in id order."""
        config = Config(
            services=[
                new_service("a", trio.sleep_forever),
                new_service("b", fails_on_runs(2, 1)),
                new_service("c", trio.sleep_forever),
            ],
            status_update_listeners=[recorder],
            restart_interval=1,
            strategy=Strategy.ONE_FOR_ALL,
        )
        await run_for(10, config)
        for service_id in (0, 2):
            assert per_service(recorder, service_id) == [
                (IDLE, 0),
                (RUNNING, 0),
                (STOPPED, 2),
                (IDLE, 3),
                (RUNNING, 3),
                (STOPPED, 10),
            ]
        assert per_service(recorder, 1) == [
            (IDLE, 0),
            (RUNNING, 0),
            (ERROR, 2),
            (IDLE, 3),
            (RUNNING, 3),
            (STOPPED, 10),
        ]
        assert idles_at(recorder, 3) == ["a", "b", "c"]
        # Nothing is restarted before every other service has stopped.
        at_2 = [(n, s) for n, s, t in recorder.transitions() if t == 2]
        assert at_2[0] == ("b", ERROR)
        assert sorted(at_2[1:]) == [("a", STOPPED), ("c", STOPPED)]

    async def test_clean_end_of_a_permanent_service_restarts_the_group(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """Any end that needs a restart, a clean one too, takes the group along."""
        runs = 0

        async def returns_once() -> None:
            nonlocal runs
            runs += 1
            if runs == 1:
                await trio.sleep(4)
                return
            await trio.sleep_forever()

        config = Config(
            services=[
                new_service("a", returns_once),
                new_service("b", trio.sleep_forever),
            ],
            status_update_listeners=[recorder],
            restart_interval=0.5,
            strategy=Strategy.ONE_FOR_ALL,
        )
        await run_for(6, config)
        assert per_service(recorder, 0) == [
            (IDLE, 0),
            (RUNNING, 0),
            (STOPPED, 4),
            (IDLE, 4.5),
            (RUNNING, 4.5),
            (STOPPED, 6),
        ]
        assert per_service(recorder, 1) == [
            (IDLE, 0),
            (RUNNING, 0),
            (STOPPED, 4),
            (IDLE, 4.5),
            (RUNNING, 4.5),
            (STOPPED, 6),
        ]

    async def test_temporary_sibling_is_stopped_not_restarted(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A TEMPORARY sibling stops with the group and stays STOPPED."""
        config = Config(
            services=[
                new_service("temp", trio.sleep_forever, restart=Restart.TEMPORARY),
                new_service("b", fails_on_runs(2, 1)),
                new_service("c", trio.sleep_forever),
            ],
            status_update_listeners=[recorder],
            restart_interval=1,
            strategy=Strategy.ONE_FOR_ALL,
        )
        supervisor = await run_for(10, config)
        assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 2)]
        assert idles_at(recorder, 3) == ["b", "c"]
        assert [(u.status, u.time) for u in supervisor.statuses()] == [
            (STOPPED, 2),
            (STOPPED, 10),
            (STOPPED, 10),
        ]

    async def test_service_ended_for_good_is_not_restarted_by_the_group(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A TRANSIENT service that returned earlier stays STOPPED through a group
        restart."""

        async def returns_after_one() -> None:
            await trio.sleep(1)

        config = Config(
            services=[
                new_service("done", returns_after_one, restart=Restart.TRANSIENT),
                new_service("b", fails_on_runs(3, 1)),
            ],
            status_update_listeners=[recorder],
            restart_interval=1,
            strategy=Strategy.ONE_FOR_ALL,
        )
        await run_for(10, config)
        assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 1)]
        assert per_service(recorder, 1) == [
            (IDLE, 0),
            (RUNNING, 0),
            (ERROR, 3),
            (IDLE, 4),
            (RUNNING, 4),
            (STOPPED, 10),
        ]

    async def test_group_waits_for_slow_siblings_to_stop(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A sibling with a shutdown timeout delays the group restart until it ends."""
        stop_seen: list[float] = []

        async def slow() -> None:
            await stop_requested().wait()
            stop_seen.append(trio.current_time())
            await trio.sleep_forever()

        config = Config(
            services=[
                new_service("slow", slow, shutdown_timeout=3),
                new_service("b", fails_on_runs(2, 1)),
            ],
            status_update_listeners=[recorder],
            restart_interval=1,
            strategy=Strategy.ONE_FOR_ALL,
        )
        await run_for(10, config)
        assert stop_seen == [2, 10]
        assert per_service(recorder, 0)[:5] == [
            (IDLE, 0),
            (RUNNING, 0),
            (STOPPED, 5),
            (IDLE, 5),
            (RUNNING, 5),
        ]
        assert per_service(recorder, 1)[:5] == [
            (IDLE, 0),
            (RUNNING, 0),
            (ERROR, 2),
            (IDLE, 5),
            (RUNNING, 5),
        ]
        # The final shutdown gives slow its timeout again: it ends at 13.
        assert per_service(recorder, 0)[-1] == (STOPPED, 13)

    async def test_group_restart_counts_once_for_intensity(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """Stopping the siblings is not a restart: one group restart is one restart."""
        config = Config(
            services=[
                new_service("a", trio.sleep_forever),
                new_service("b", fails_on_runs(2, 1, 2)),
                new_service("c", trio.sleep_forever),
            ],
            status_update_listeners=[recorder],
            restart_interval=1,
            strategy=Strategy.ONE_FOR_ALL,
            max_restarts=1,
            max_seconds=100,
        )
        supervisor = Supervisor(config)
        with pytest.raises(RestartIntensityExceeded) as info:
            await supervisor.run()
        # b fails at 2 (restart 1 of 1, all restarted at 3), again at 5: refused.
        assert trio.current_time() == 5
        assert transitions_of(info.value.failures) == [("b", ERROR, 2), ("b", ERROR, 5)]
        assert idles_at(recorder, 3) == ["a", "b", "c"]
        assert per_service(recorder, 0)[-1] == (STOPPED, 5)
        assert per_service(recorder, 2)[-1] == (STOPPED, 5)

    async def test_group_restart_follows_the_failed_services_delay(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """The group starts again at the failed service's end time plus its delay."""
        config = Config(
            services=[
                new_service("a", trio.sleep_forever),
                new_service(
                    "b",
                    fails_on_runs(1, 1, 2, 3),
                    backoff=Backoff(2, maximum=10),
                ),
            ],
            status_update_listeners=[recorder],
            restart_interval=100,
            strategy=Strategy.ONE_FOR_ALL,
        )
        await run_for(20, config)
        # b fails at 1 (delay 2), 4 (delay 4), 9 (delay 8): starts at 3, 8, 17.
        assert [t for _, s, t in recorder.transitions(0) if s is IDLE] == [
            0,
            3,
            8,
            17,
        ]
        assert [t for _, s, t in recorder.transitions(1) if s is ERROR] == [1, 4, 9]


class TestRestForOne:
    """REST_FOR_ONE: a restart takes along the services started after it."""

    async def test_failure_restarts_the_service_and_those_after_it(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """c fails at 2: d stops at 2; c and d start again at 3; a and b never stop."""
        config = Config(
            services=[
                new_service("a", trio.sleep_forever),
                new_service("b", trio.sleep_forever),
                new_service("c", fails_on_runs(2, 1)),
                new_service("d", trio.sleep_forever),
            ],
            status_update_listeners=[recorder],
            restart_interval=1,
            strategy=Strategy.REST_FOR_ONE,
        )
        await run_for(10, config)
        assert per_service(recorder, 0) == lifetime(0, STOPPED, 10)
        assert per_service(recorder, 1) == lifetime(0, STOPPED, 10)
        assert per_service(recorder, 2) == [
            (IDLE, 0),
            (RUNNING, 0),
            (ERROR, 2),
            (IDLE, 3),
            (RUNNING, 3),
            (STOPPED, 10),
        ]
        assert per_service(recorder, 3) == [
            (IDLE, 0),
            (RUNNING, 0),
            (STOPPED, 2),
            (IDLE, 3),
            (RUNNING, 3),
            (STOPPED, 10),
        ]
        assert idles_at(recorder, 3) == ["c", "d"]

    async def test_first_service_failing_restarts_all(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """The first service's restart takes every service along, in id order."""
        config = Config(
            services=[
                new_service("a", fails_on_runs(2, 1)),
                new_service("b", trio.sleep_forever),
                new_service("c", trio.sleep_forever),
            ],
            status_update_listeners=[recorder],
            restart_interval=1,
            strategy=Strategy.REST_FOR_ONE,
        )
        await run_for(10, config)
        assert idles_at(recorder, 3) == ["a", "b", "c"]
        assert [s for s, _ in per_service(recorder, 1)] == [
            IDLE,
            RUNNING,
            STOPPED,
            IDLE,
            RUNNING,
            STOPPED,
        ]
        assert [t for _, t in per_service(recorder, 2)] == [0, 0, 2, 3, 3, 10]

    async def test_last_service_failing_restarts_only_itself(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """The last service has no later siblings: only it restarts."""
        config = Config(
            services=[
                new_service("a", trio.sleep_forever),
                new_service("b", fails_on_runs(2, 1)),
            ],
            status_update_listeners=[recorder],
            restart_interval=1,
            strategy=Strategy.REST_FOR_ONE,
        )
        await run_for(10, config)
        assert per_service(recorder, 0) == lifetime(0, STOPPED, 10)
        assert [t for _, t in per_service(recorder, 1)] == [0, 0, 2, 3, 3, 10]

    async def test_temporary_later_sibling_is_stopped_not_restarted(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A TEMPORARY service after the failed one stops and stays STOPPED."""
        config = Config(
            services=[
                new_service("a", fails_on_runs(2, 1)),
                new_service("temp", trio.sleep_forever, restart=Restart.TEMPORARY),
                new_service("c", trio.sleep_forever),
            ],
            status_update_listeners=[recorder],
            restart_interval=1,
            strategy=Strategy.REST_FOR_ONE,
        )
        await run_for(10, config)
        assert per_service(recorder, 1) == lifetime(0, STOPPED, 2)
        assert idles_at(recorder, 3) == ["a", "c"]


def test_strategy_defaults_to_one_for_one() -> None:
    """Config's strategy is ONE_FOR_ONE unless set."""
    assert Config().strategy is Strategy.ONE_FOR_ONE


def test_strategy_must_be_a_strategy() -> None:
    """A strategy that is not a Strategy is a TypeError naming the field."""
    bad: Any = "one_for_all"
    with pytest.raises(
        TypeError, match=r"^Config\.strategy must be a Strategy, got 'one_for_all'$"
    ):
        Supervisor(Config(strategy=bad))


async def test_one_for_one_restarts_only_the_failed_service(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """ONE_FOR_ONE leaves the siblings of a failed service running."""
    config = Config(
        services=[
            new_service("a", trio.sleep_forever),
            new_service("b", fails_on_runs(2, 1)),
        ],
        status_update_listeners=[recorder],
        restart_interval=1,
    )
    await run_for(10, config)
    assert per_service(recorder, 0) == lifetime(0, STOPPED, 10)
    expected: list[Transition] = [
        ("b", IDLE, 0),
        ("b", RUNNING, 0),
        ("b", ERROR, 2),
        ("b", IDLE, 3),
        ("b", RUNNING, 3),
        ("b", STOPPED, 10),
    ]
    assert recorder.transitions(1) == expected


async def test_stop_during_a_group_restart_delay(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """stop() while the group waits for its restart ends run() at once; the group's
    services keep their last statuses."""
    config = Config(
        services=[
            new_service("a", trio.sleep_forever),
            new_service("b", fails_on_runs(1, 1)),
        ],
        status_update_listeners=[recorder],
        restart_interval=100,
        strategy=Strategy.ONE_FOR_ALL,
    )
    supervisor = Supervisor(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(5)
        assert [(u.service_name, u.status) for u in supervisor.unready_services()] == [
            ("a", STOPPED),
            ("b", ERROR),
        ]
        supervisor.stop()
    assert trio.current_time() == 5
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 1)]
    assert per_service(recorder, 1) == [(IDLE, 0), (RUNNING, 0), (ERROR, 1)]
