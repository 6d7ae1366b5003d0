"""Config.individual_stop=False: services without a cancel scope of their own,
stopped only all together."""

from __future__ import annotations

import logging
import re

import pytest
import trio
import trio.testing
from conftest import Recorder, run_for

from trio_supervisor import (
    Config,
    Restart,
    Status,
    Supervisor,
    current_logger,
    new_service,
    open_supervisor,
    stop_requested,
)

IDLE, RUNNING, STOPPED, ERROR = (
    Status.IDLE,
    Status.RUNNING,
    Status.STOPPED,
    Status.ERROR,
)


async def forever() -> None:
    await trio.sleep_forever()


async def fails_after_one() -> None:
    await trio.sleep(1)
    raise ValueError("boom")


def per_service(recorder: Recorder, service_id: int) -> list[tuple[Status, float]]:
    return [(s, t) for _, s, t in recorder.transitions(service_id)]


async def test_statuses_and_restarts_are_those_of_a_default_supervisor(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """Without individual stops, the same services go through the same statuses at
    the same times, to the float, as with them."""
    seen: dict[bool, list[list[tuple[Status, float]]]] = {}
    for individual_stop in (True, False):
        recorder.snapshots.clear()
        begin = trio.current_time()
        await run_for(
            5.25,
            Config(
                services=[
                    new_service("flaky", fails_after_one),
                    new_service("steady", forever),
                ],
                status_update_listeners=[recorder],
                restart_interval=0.5,
                individual_stop=individual_stop,
            ),
        )
        seen[individual_stop] = [
            [(status, time - begin) for status, time in per_service(recorder, i)]
            for i in (0, 1)
        ]
    assert seen[False] == seen[True]
    assert seen[False][0] == [
        (IDLE, 0),
        (RUNNING, 0),
        (ERROR, 1),
        (IDLE, 1.5),
        (RUNNING, 1.5),
        (ERROR, 2.5),
        (IDLE, 3),
        (RUNNING, 3),
        (ERROR, 4),
        (IDLE, 4.5),
        (RUNNING, 4.5),
        (STOPPED, 5.25),
    ]
    assert seen[False][1] == [(IDLE, 0), (RUNNING, 0), (STOPPED, 5.25)]


async def test_graceful_shutdown_gives_every_service_the_shared_timeout(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """At stop(), every service is asked to stop; one that finishes within
    Config.shutdown_timeout ends then, the others are cancelled at its end, and
    run() returns then."""
    asked: list[float] = []

    async def finishes_in_one() -> None:
        await stop_requested().wait()
        asked.append(trio.current_time())
        await trio.sleep(1)

    async def ignores() -> None:
        await stop_requested().wait()
        asked.append(trio.current_time())
        await trio.sleep_forever()

    supervisor = Supervisor(
        Config(
            services=[
                new_service("polite", finishes_in_one),
                new_service("stubborn", ignores),
            ],
            status_update_listeners=[recorder],
            shutdown_timeout=3,
            individual_stop=False,
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(2)
        supervisor.stop()
    assert trio.current_time() == 5
    assert asked == [2, 2]
    assert per_service(recorder, 0)[-1] == (STOPPED, 3)
    assert per_service(recorder, 1)[-1] == (STOPPED, 5)


async def test_a_service_waiting_for_its_restart_ends_at_once_at_shutdown(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A service waiting out its restart delay is not restarted during shutdown
    and does not hold it up, whatever the shutdown timeout: it keeps its ERROR."""
    for shutdown_timeout in (0, 4):
        recorder.snapshots.clear()
        begin = trio.current_time()
        supervisor = Supervisor(
            Config(
                services=[new_service("flaky", fails_after_one)],
                status_update_listeners=[recorder],
                restart_interval=10,
                shutdown_timeout=shutdown_timeout,
                individual_stop=False,
            )
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            await trio.sleep(2)
            supervisor.stop()
        assert trio.current_time() - begin == 2
        assert [(s, t - begin) for s, t in per_service(recorder, 0)] == [
            (IDLE, 0),
            (RUNNING, 0),
            (ERROR, 1),
        ]


async def test_caller_cancellation_stops_every_service_then_raises_bare(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """Cancelling run() from outside is a graceful shutdown here too."""
    supervisor = Supervisor(
        Config(
            services=[new_service(f"s{i}", forever) for i in range(3)],
            status_update_listeners=[recorder],
            individual_stop=False,
        )
    )
    with trio.move_on_after(7) as scope:
        await supervisor.run()
    assert scope.cancelled_caught
    assert [(u.status, u.time) for u in supervisor.statuses()] == [(STOPPED, 7)] * 3
    assert recorder.snapshots[-1] == supervisor.statuses()


async def test_remove_refuses_a_running_service_and_forgets_an_ended_one(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """remove() cannot stop one service alone: for a running one it raises and
    the service runs on; one that ended for good is forgotten."""

    async def done_at_once() -> None:
        await trio.sleep(1)

    supervisor = Supervisor(
        Config(
            services=[
                new_service("steady", forever),
                new_service("once", done_at_once, restart=Restart.TEMPORARY),
            ],
            status_update_listeners=[recorder],
            individual_stop=False,
            name="pool",
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        with pytest.raises(
            RuntimeError,
            match=re.escape(
                "service 'steady' (id 0) is running, and supervisor 'pool' has "
                "individual_stop=False: its running services stop only all together"
            ),
        ):
            await supervisor.remove(0)
        await trio.sleep(2)
        await supervisor.remove(1)
        await trio.testing.wait_all_tasks_blocked()
        assert [(u.service_name, u.status) for u in supervisor.statuses()] == [
            ("steady", RUNNING)
        ]
        assert [u.service_name for u in recorder.snapshots[-1]] == ["steady"]
        supervisor.stop()
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 2)]


async def test_add_checks_the_options_that_need_individual_stops(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """add() refuses a watchdog or a shutdown timeout of its own, names the
    option, and starts nothing; a service with the shared timeout is welcome."""
    supervisor = Supervisor(
        Config(
            status_update_listeners=[recorder],
            shutdown_timeout=2,
            individual_stop=False,
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        with pytest.raises(
            ValueError,
            match=re.escape(
                "service: watchdog needs Config.individual_stop=True "
                "(it cancels one service alone), got watchdog=1"
            ),
        ):
            supervisor.add(new_service("watched", forever, watchdog=1))
        with pytest.raises(
            ValueError,
            match=re.escape(
                "service: shutdown_timeout=0 differs from Config.shutdown_timeout=2, "
                "and Config.individual_stop=False stops every service at once"
            ),
        ):
            supervisor.add(new_service("hasty", forever, shutdown_timeout=0))
        assert supervisor.statuses() == []
        await trio.sleep(1)
        assert supervisor.add(new_service("shared", forever, shutdown_timeout=2)) == 0
        await trio.sleep(1)
        supervisor.stop()
    assert trio.current_time() == 4
    assert per_service(recorder, 0) == [(IDLE, 1), (RUNNING, 1), (STOPPED, 4)]


async def test_ready_services_start_in_order(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """Readiness needs no scope: each ready service starts after the one before
    it called started()."""

    async def slow_start(*, task_status: trio.TaskStatus[None]) -> None:
        await trio.sleep(2)
        task_status.started()
        await trio.sleep_forever()

    async with open_supervisor(
        Config(
            services=[
                new_service("first", slow_start, ready=True),
                new_service("second", slow_start, ready=True),
            ],
            status_update_listeners=[recorder],
            individual_stop=False,
        )
    ):
        assert trio.current_time() == 4
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 2), (STOPPED, 4)]
    assert per_service(recorder, 1) == [(IDLE, 2), (RUNNING, 4), (STOPPED, 4)]


async def test_a_child_pool_stops_with_its_parent(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A pool of scope-less services supervised by a default supervisor stops,
    service by service, when the parent stops it."""
    pool = Supervisor(
        Config(
            services=[new_service(f"conn-{i}", forever) for i in range(2)],
            status_update_listeners=[recorder],
            individual_stop=False,
            name="pool",
        )
    )
    async with open_supervisor(Config(services=[pool], shutdown_timeout=1)):
        await trio.sleep(3)
    assert trio.current_time() == 3
    assert [(u.service_name, u.status, u.time) for u in pool.statuses()] == [
        ("conn-0", STOPPED, 3),
        ("conn-1", STOPPED, 3),
    ]


async def test_services_see_their_logger_and_stop_request(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """current_logger() and stop_requested() find the calling service without
    a scope of its own."""
    seen: list[tuple[str, float]] = []

    async def polite() -> None:
        current_logger().warning("up")
        await stop_requested().wait()
        seen.append(("asked", trio.current_time()))

    with caplog.at_level(logging.WARNING, logger="trio_supervisor"):
        async with open_supervisor(
            Config(
                services=[new_service("polite", polite)],
                shutdown_timeout=1,
                individual_stop=False,
            )
        ) as supervisor:
            await trio.sleep(2)
    assert seen == [("asked", 2)]
    assert [
        (r.getMessage(), getattr(r, "service_name", None)) for r in caplog.records
    ] == [("up", "polite")]
    assert [(u.status, u.time) for u in supervisor.statuses()] == [(STOPPED, 2)]
