"""Watchdog: heartbeat() or be cancelled with WatchdogTimeout; the context
functions outside a service."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing
from conftest import Recorder, run_for

from trio_supervisor import (
    Config,
    Restart,
    Status,
    WatchdogTimeout,
    current_logger,
    heartbeat,
    new_service,
    stop_requested,
)

IDLE, RUNNING, STOPPED, ERROR = (
    Status.IDLE,
    Status.RUNNING,
    Status.STOPPED,
    Status.ERROR,
)


def per_service(recorder: Recorder, service_id: int) -> list[tuple[Status, float]]:
    return [(s, t) for _, s, t in recorder.transitions(service_id)]


async def beats(every: float, times: int) -> None:
    """Send ``times`` heartbeats ``every`` seconds apart, then hang silently."""
    for _ in range(times):
        await trio.sleep(every)
        heartbeat()
    await trio.sleep_forever()


async def test_silent_service_is_cancelled_at_start_plus_watchdog(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """No heartbeat: ERROR with WatchdogTimeout at run start + watchdog, then a
    restart after the restart interval."""
    config = Config(
        services=[new_service("w", trio.sleep_forever, watchdog=2)],
        status_update_listeners=[recorder],
        restart_interval=0.5,
    )
    supervisor = await run_for(6, config)
    assert per_service(recorder, 0) == [
        (IDLE, 0),
        (RUNNING, 0),
        (ERROR, 2),
        (IDLE, 2.5),
        (RUNNING, 2.5),
        (ERROR, 4.5),
        (IDLE, 5),
        (RUNNING, 5),
        (STOPPED, 6),
    ]
    errors = [u.err for s in recorder.snapshots for u in s if u.status is ERROR]
    assert [type(e) for e in errors] == [WatchdogTimeout] * len(errors)
    assert str(errors[0]) == "service 'w' sent no heartbeat() within 2s"
    assert supervisor.statuses()[0].err is None


async def test_heartbeats_keep_the_service_alive(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """Heartbeats every 1.5 s under a 2 s watchdog keep it running; the last one at
    6 leaves it to expire at 8."""
    config = Config(
        services=[new_service("w", beats, 1.5, 4, watchdog=2)],
        status_update_listeners=[recorder],
        restart_interval=100,
    )
    await run_for(20, config)
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (ERROR, 8)]


async def test_heartbeat_from_a_child_task_counts(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A task of the service's own nursery may feed the watchdog."""

    async def service() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(beats, 1, 10)
            await trio.sleep_forever()

    config = Config(
        services=[new_service("w", service, watchdog=1.5)],
        status_update_listeners=[recorder],
        restart_interval=100,
    )
    await run_for(30, config)
    assert per_service(recorder, 0)[:3] == [(IDLE, 0), (RUNNING, 0), (ERROR, 11.5)]


async def test_restart_follows_the_policy(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A watchdog failure is an ERROR: TRANSIENT restarts, TEMPORARY does not."""
    config = Config(
        services=[
            new_service(
                "transient", trio.sleep_forever, watchdog=1, restart=Restart.TRANSIENT
            ),
            new_service(
                "temporary", trio.sleep_forever, watchdog=1, restart=Restart.TEMPORARY
            ),
        ],
        status_update_listeners=[recorder],
        restart_interval=1,
    )
    await run_for(4.5, config)
    assert per_service(recorder, 0) == [
        (IDLE, 0),
        (RUNNING, 0),
        (ERROR, 1),
        (IDLE, 2),
        (RUNNING, 2),
        (ERROR, 3),
        (IDLE, 4),
        (RUNNING, 4),
        (STOPPED, 4.5),
    ]
    assert per_service(recorder, 1) == [(IDLE, 0), (RUNNING, 0), (ERROR, 1)]


async def test_each_run_gets_a_fresh_watchdog(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """After a restart the deadline counts from the new run's start."""
    runs = 0

    async def service() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            await trio.sleep(1)
            raise ValueError("boom")
        await trio.sleep_forever()

    config = Config(
        services=[new_service("w", service, watchdog=3)],
        status_update_listeners=[recorder],
        restart_interval=0.5,
    )
    await run_for(10, config)
    assert per_service(recorder, 0)[:6] == [
        (IDLE, 0),
        (RUNNING, 0),
        (ERROR, 1),
        (IDLE, 1.5),
        (RUNNING, 1.5),
        (ERROR, 4.5),
    ]


async def test_heartbeat_without_watchdog_is_a_no_op(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A service without a watchdog may call heartbeat() freely."""
    config = Config(
        services=[new_service("w", beats, 1, 3)],
        status_update_listeners=[recorder],
    )
    await run_for(10, config)
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 10)]


async def test_ready_service_watchdog_counts_from_run_start(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """With ready=True the watchdog starts with the run, not at started()."""

    async def service(*, task_status: trio.TaskStatus[None]) -> None:
        await trio.sleep(1)
        task_status.started()
        await trio.sleep_forever()

    config = Config(
        services=[new_service("w", service, ready=True, watchdog=2.5)],
        status_update_listeners=[recorder],
        restart_interval=100,
    )
    await run_for(10, config)
    assert per_service(recorder, 0)[:3] == [(IDLE, 0), (RUNNING, 1), (ERROR, 2.5)]


@pytest.mark.parametrize(
    ("function", "name"),
    [
        (heartbeat, "heartbeat"),
        (stop_requested, "stop_requested"),
        (current_logger, "current_logger"),
    ],
    ids=["heartbeat", "stop_requested", "current_logger"],
)
async def test_context_functions_outside_a_service_raise(
    function: Callable[[], object], name: str
) -> None:
    """heartbeat(), stop_requested() and current_logger() need a running service."""
    with pytest.raises(
        RuntimeError,
        match=rf"^trio_supervisor\.{name}\(\) must be called inside a supervised "
        r"service$",
    ):
        function()


@pytest.mark.parametrize(
    ("function", "name"),
    [
        (heartbeat, "heartbeat"),
        (stop_requested, "stop_requested"),
        (current_logger, "current_logger"),
    ],
    ids=["heartbeat", "stop_requested", "current_logger"],
)
def test_context_functions_outside_trio_raise(
    function: Callable[[], object], name: str
) -> None:
    """Outside any Trio run they raise the same RuntimeError."""
    with pytest.raises(
        RuntimeError,
        match=rf"^trio_supervisor\.{name}\(\) must be called inside a supervised "
        r"service$",
    ):
        function()


async def test_listener_is_outside_any_service(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A status listener is not a service: heartbeat() there raises RuntimeError."""
    raised: list[str] = []

    def listener(snapshot: object) -> None:
        try:
            heartbeat()
        except RuntimeError as exc:
            raised.append(str(exc))

    config = Config(
        services=[new_service("w", trio.sleep_forever)],
        status_update_listeners=[listener],
    )
    await run_for(1, config)
    assert raised
    assert set(raised) == {
        "trio_supervisor.heartbeat() must be called inside a supervised service"
    }


def test_watchdog_must_be_positive() -> None:
    """A watchdog of 0 seconds is a ValueError naming the option."""
    with pytest.raises(ValueError, match=r"^watchdog must be > 0 seconds, got 0$"):
        new_service("w", trio.sleep_forever, watchdog=0)


async def test_current_logger_names_the_service(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Inside a service current_logger() carries its name and id."""
    extras: list[object] = []

    async def service() -> None:
        extras.append(current_logger().extra)
        await trio.sleep_forever()

    await run_for(1, Config(services=[new_service("w", service)]))
    assert extras == [{"service_name": "w", "service_id": 0}]


async def test_watchdog_does_not_cut_a_graceful_stop_short(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A service asked to stop finishes within its shutdown_timeout, heartbeats or
    not: it ends at its own time, not at its watchdog deadline."""

    async def service() -> None:
        await stop_requested().wait()
        await trio.sleep(4)

    config = Config(
        services=[new_service("w", service, watchdog=3, shutdown_timeout=10)],
        status_update_listeners=[recorder],
    )
    await run_for(1, config)
    assert trio.current_time() == 5
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 5)]
