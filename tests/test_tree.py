"""Supervision trees: supervisors supervised by supervisors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from conftest import Recorder, run_for, transitions_of

from trio_supervisor import (
    Config,
    RestartIntensityExceeded,
    Service,
    ServiceSpec,
    Status,
    StopSupervisor,
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


def fails_every(seconds: float) -> Callable[[], Awaitable[None]]:
    async def fn() -> None:
        await trio.sleep(seconds)
        raise ValueError("leaf failure")

    return fn


def per_service(recorder: Recorder, service_id: int) -> list[tuple[Status, float]]:
    return [(s, t) for _, s, t in recorder.transitions(service_id)]


def test_supervisor_is_a_service() -> None:
    """A Supervisor satisfies Service, named by Config.name."""
    child = Supervisor(Config(name="workers"))
    assert isinstance(child, Service)
    assert child.name == "workers"
    assert Supervisor(Config()).name == "supervisor"


def test_supervisor_name_is_checked() -> None:
    """An empty Config.name is a ValueError naming the field."""
    with pytest.raises(ValueError, match=r"^Config\.name must not be empty, got ''$"):
        Supervisor(Config(name=""))


async def test_child_supervisor_runs_under_its_parent(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """The parent reports the child supervisor as one service; the child its own."""
    inner = Recorder()
    child = Supervisor(
        Config(
            name="child",
            services=[new_service("leaf", trio.sleep_forever)],
            status_update_listeners=[inner],
        )
    )
    config = Config(
        name="parent",
        services=[child, new_service("sibling", trio.sleep_forever)],
        status_update_listeners=[recorder],
    )
    await run_for(5, config)
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 5)]
    assert recorder.transitions(0)[0][0] == "child"
    assert inner.transitions() == [
        ("leaf", IDLE, 0),
        ("leaf", RUNNING, 0),
        ("leaf", STOPPED, 5),
    ]


async def test_child_exceeding_its_intensity_is_restarted_by_the_parent(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """The child's RestartIntensityExceeded is its ERROR in the parent, which
    restarts it after its own restart interval."""
    inner = Recorder()
    child = Supervisor(
        Config(
            name="child",
            services=[new_service("leaf", fails_every(1))],
            status_update_listeners=[inner],
            max_restarts=1,
            max_seconds=10,
        )
    )
    config = Config(
        services=[child],
        status_update_listeners=[recorder],
        restart_interval=3,
    )
    supervisor = await run_for(8.5, config)
    # leaf fails at 1 (restart), 2 (refused): child ends at 2, restarts at 5,
    # leaf fails at 6 (restart), 7 (refused): child ends at 7.
    assert per_service(recorder, 0) == [
        (IDLE, 0),
        (RUNNING, 0),
        (ERROR, 2),
        (IDLE, 5),
        (RUNNING, 5),
        (ERROR, 7),
    ]
    err = supervisor.statuses()[0].err
    assert type(err) is RestartIntensityExceeded
    assert transitions_of(err.failures) == [("leaf", ERROR, 6), ("leaf", ERROR, 7)]
    assert [(s, t) for _, s, t in inner.transitions()] == [
        (IDLE, 0),
        (RUNNING, 0),
        (ERROR, 1),
        (IDLE, 1),
        (RUNNING, 1),
        (ERROR, 2),
        (IDLE, 5),
        (RUNNING, 5),
        (ERROR, 6),
        (IDLE, 6),
        (RUNNING, 6),
        (ERROR, 7),
    ]


async def test_two_level_tree_escalates_to_the_top(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """leaf fails past mid's intensity, mid's end is past top's: top's run() raises."""
    mid_recorder = Recorder()
    mid = Supervisor(
        Config(
            name="mid",
            services=[new_service("leaf", fails_every(1))],
            status_update_listeners=[mid_recorder],
            max_restarts=1,
            max_seconds=10,
        )
    )
    top = Supervisor(
        Config(
            name="top",
            services=[mid, new_service("other", trio.sleep_forever)],
            status_update_listeners=[recorder],
            max_restarts=0,
            max_seconds=10,
        )
    )
    with pytest.raises(RestartIntensityExceeded) as info:
        await top.run()
    assert type(info.value) is RestartIntensityExceeded
    assert trio.current_time() == 2
    assert transitions_of(info.value.failures) == [("mid", ERROR, 2)]
    mid_err = info.value.failures[0].err
    assert isinstance(mid_err, RestartIntensityExceeded)
    assert transitions_of(mid_err.failures) == [("leaf", ERROR, 1), ("leaf", ERROR, 2)]
    assert per_service(recorder, 1) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 2)]
    assert not top.running
    assert not mid.running


async def test_three_levels_escalate_step_by_step(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each level restarts its child until its own intensity gives up."""
    low = Supervisor(
        Config(
            name="low",
            services=[new_service("leaf", fails_every(1))],
            max_restarts=0,
            max_seconds=10,
        )
    )
    mid = Supervisor(Config(name="mid", services=[low], max_restarts=1, max_seconds=10))
    top = Supervisor(
        Config(
            name="top",
            services=[mid],
            restart_interval=0.5,
            max_restarts=0,
            max_seconds=10,
        )
    )
    with pytest.raises(RestartIntensityExceeded) as info:
        await top.run()
    # low gives up at 1 and (restarted by mid at once) at 2: mid gives up at 2.
    assert trio.current_time() == 2
    assert transitions_of(info.value.failures) == [("mid", ERROR, 2)]


async def test_parent_stop_stops_the_children_gracefully(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """On the parent's stop, the child's services get their own stop request and
    shutdown timeout; the child supervisor ends when they have."""
    requests: list[tuple[str, float]] = []
    inner = Recorder()

    async def finisher() -> None:
        await stop_requested().wait()
        requests.append(("finisher", trio.current_time()))
        await trio.sleep(1)

    async def ignorer() -> None:
        await stop_requested().wait()
        requests.append(("ignorer", trio.current_time()))
        await trio.sleep_forever()

    child = Supervisor(
        Config(
            name="child",
            services=[
                new_service("finisher", finisher, shutdown_timeout=5),
                new_service("ignorer", ignorer, shutdown_timeout=2),
            ],
            status_update_listeners=[inner],
        )
    )
    parent = Supervisor(
        Config(
            services=[child],
            status_update_listeners=[recorder],
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(parent.run)
        await trio.sleep(10)
        parent.stop()
    assert trio.current_time() == 12
    assert sorted(requests) == [("finisher", 10), ("ignorer", 10)]
    assert per_service(inner, 0)[-1] == (STOPPED, 11)
    assert per_service(inner, 1)[-1] == (STOPPED, 12)
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 12)]


async def test_child_supervisor_with_ready_signals_its_startup(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """With ready=True the parent waits for the child's services to be ready."""

    async def ready_after(
        seconds: float, *, task_status: trio.TaskStatus[None]
    ) -> None:
        await trio.sleep(seconds)
        task_status.started()
        await trio.sleep_forever()

    child = Supervisor(
        Config(
            name="child",
            services=[new_service("slow", ready_after, 2, ready=True)],
        )
    )
    config = Config(
        services=[
            ServiceSpec(child, ready=True),
            new_service("after", trio.sleep_forever),
        ],
        status_update_listeners=[recorder],
    )
    await run_for(5, config)
    assert recorder.transitions()[:4] == [
        ("child", IDLE, 0),
        ("child", RUNNING, 2),
        ("after", IDLE, 2),
        ("after", RUNNING, 2),
    ]


async def test_child_stop_supervisor_is_a_clean_end_in_the_parent(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A child supervisor stopped by StopSupervisor returns: STOPPED in the parent,
    restarted as a PERMANENT service."""

    async def stops() -> None:
        await trio.sleep(2)
        raise StopSupervisor

    child = Supervisor(Config(name="child", services=[new_service("job", stops)]))
    config = Config(
        services=[child],
        status_update_listeners=[recorder],
        restart_interval=1,
    )
    await run_for(6.5, config)
    assert per_service(recorder, 0) == [
        (IDLE, 0),
        (RUNNING, 0),
        (STOPPED, 2),
        (IDLE, 3),
        (RUNNING, 3),
        (STOPPED, 5),
        (IDLE, 6),
        (RUNNING, 6),
        (STOPPED, 6.5),
    ]
    assert [u.err for u in (s[0] for s in recorder.snapshots)] == [None] * len(
        recorder.snapshots
    )
