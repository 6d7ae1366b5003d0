"""Restart policies PERMANENT, TRANSIENT, TEMPORARY; DoNotRestart; StopSupervisor."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from conftest import Recorder, run_for

from trio_supervisor import (
    Config,
    DoNotRestart,
    Restart,
    Status,
    StopSupervisor,
    Supervisor,
    new_service,
    stop_requested,
)

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

IDLE, RUNNING, STOPPED, ERROR, PANIC = (
    Status.IDLE,
    Status.RUNNING,
    Status.STOPPED,
    Status.ERROR,
    Status.PANIC,
)


class Panic(BaseException):
    """A BaseException that is not an Exception: a run that ends with it is PANIC."""


async def returns_after(seconds: float) -> None:
    await trio.sleep(seconds)


async def fails_after(seconds: float) -> None:
    await trio.sleep(seconds)
    raise ValueError("boom")


async def panics_after(seconds: float) -> None:
    await trio.sleep(seconds)
    raise Panic("panic")


def test_restart_defaults_to_permanent() -> None:
    """A service built without a restart option is PERMANENT."""
    assert new_service("a", returns_after, 1).restart is Restart.PERMANENT


async def test_permanent_service_restarts_after_a_clean_stop(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A PERMANENT service that returns is restarted after the restart interval."""
    config = Config(
        services=[new_service("a", returns_after, 2, restart=Restart.PERMANENT)],
        status_update_listeners=[recorder],
        restart_interval=1,
    )
    await run_for(7.5, config)
    assert recorder.transitions() == [
        ("a", IDLE, 0),
        ("a", RUNNING, 0),
        ("a", STOPPED, 2),
        ("a", IDLE, 3),
        ("a", RUNNING, 3),
        ("a", STOPPED, 5),
        ("a", IDLE, 6),
        ("a", RUNNING, 6),
        ("a", STOPPED, 7.5),
    ]


async def test_transient_service_that_stops_cleanly_is_not_restarted(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A TRANSIENT service that returns stays STOPPED in every later snapshot."""
    config = Config(
        services=[
            new_service("a", returns_after, 2, restart=Restart.TRANSIENT),
            new_service("b", fails_after, 3),
        ],
        status_update_listeners=[recorder],
        restart_interval=1,
    )
    supervisor = await run_for(10, config)
    assert recorder.transitions(0) == [
        ("a", IDLE, 0),
        ("a", RUNNING, 0),
        ("a", STOPPED, 2),
    ]
    # b keeps changing; every snapshot taken after a's end still shows it STOPPED.
    later = [s for s in recorder.snapshots if s[0].time >= 2]
    assert len(later) > 5
    assert all(s[0].status is STOPPED and s[0].time == 2 for s in later)
    assert recorder.transitions(1)[-3:] == [
        ("b", IDLE, 8),
        ("b", RUNNING, 8),
        ("b", STOPPED, 10),
    ]
    first = supervisor.statuses()[0]
    assert (first.status, first.time, first.err) == (STOPPED, 2, None)


@pytest.mark.parametrize(
    ("fn", "ended"),
    [(fails_after, ERROR), (panics_after, PANIC)],
    ids=["error", "panic"],
)
async def test_transient_service_restarts_after_a_failure(
    autojump_clock: trio.testing.MockClock,
    recorder: Recorder,
    fn: Callable[[float], Awaitable[None]],
    ended: Status,
) -> None:
    """A TRANSIENT service that ends with ERROR or PANIC is restarted."""
    config = Config(
        services=[new_service("a", fn, 2, restart=Restart.TRANSIENT)],
        status_update_listeners=[recorder],
        restart_interval=0.5,
    )
    await run_for(5.25, config)
    assert recorder.transitions() == [
        ("a", IDLE, 0),
        ("a", RUNNING, 0),
        ("a", ended, 2),
        ("a", IDLE, 2.5),
        ("a", RUNNING, 2.5),
        ("a", ended, 4.5),
        ("a", IDLE, 5),
        ("a", RUNNING, 5),
        ("a", STOPPED, 5.25),
    ]


@pytest.mark.parametrize(
    ("fn", "ended"),
    [(returns_after, STOPPED), (fails_after, ERROR), (panics_after, PANIC)],
    ids=["clean", "error", "panic"],
)
async def test_temporary_service_is_never_restarted(
    autojump_clock: trio.testing.MockClock,
    recorder: Recorder,
    fn: Callable[[float], Awaitable[None]],
    ended: Status,
) -> None:
    """A TEMPORARY service keeps its end status, through shutdown too."""
    config = Config(
        services=[
            new_service("a", fn, 2, restart=Restart.TEMPORARY),
            new_service("b", trio.sleep_forever),
        ],
        status_update_listeners=[recorder],
        restart_interval=0,
    )
    supervisor = await run_for(9, config)
    assert recorder.transitions(0) == [
        ("a", IDLE, 0),
        ("a", RUNNING, 0),
        ("a", ended, 2),
    ]
    assert recorder.transitions(1) == [
        ("b", IDLE, 0),
        ("b", RUNNING, 0),
        ("b", STOPPED, 9),
    ]
    last = recorder.snapshots[-1]
    assert [(u.service_name, u.status, u.time) for u in last] == [
        ("a", ended, 2),
        ("b", STOPPED, 9),
    ]
    assert supervisor.unready_services() == []


async def test_service_ended_for_good_is_not_unready(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A TRANSIENT service that returned need not run: unready_services() is empty."""
    supervisor = Supervisor(
        Config(services=[new_service("a", returns_after, 1, restart=Restart.TRANSIENT)])
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(5)
        assert [u.status for u in supervisor.statuses()] == [STOPPED]
        assert supervisor.unready_services() == []
        supervisor.stop()
    assert trio.current_time() == 5


class TestDoNotRestart:
    """DoNotRestart ends a service for good, whatever its policy."""

    @pytest.mark.parametrize("policy", list(Restart), ids=lambda p: p.name)
    async def test_do_not_restart_stops_the_service_for_good(
        self,
        autojump_clock: trio.testing.MockClock,
        recorder: Recorder,
        policy: Restart,
    ) -> None:
        """DoNotRestart gives STOPPED with the exception as err, never restarted."""
        raised = DoNotRestart("done")

        async def finish() -> None:
            await trio.sleep(3)
            raise raised

        config = Config(
            services=[new_service("a", finish, restart=policy)],
            status_update_listeners=[recorder],
            restart_interval=1,
        )
        supervisor = await run_for(10, config)
        assert recorder.transitions() == [
            ("a", IDLE, 0),
            ("a", RUNNING, 0),
            ("a", STOPPED, 3),
        ]
        assert recorder.snapshots[-1][0].err is raised
        assert supervisor.statuses()[0].err is raised

    async def test_do_not_restart_in_a_group_stops_the_service_for_good(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A group holding only DoNotRestart (from a service's nursery) counts too."""

        async def child() -> None:
            await trio.sleep(2)
            raise DoNotRestart("done")

        async def with_nursery() -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(child)
                await trio.sleep_forever()

        config = Config(
            services=[new_service("a", with_nursery)],
            status_update_listeners=[recorder],
        )
        await run_for(5, config)
        assert recorder.transitions() == [
            ("a", IDLE, 0),
            ("a", RUNNING, 0),
            ("a", STOPPED, 2),
        ]
        err = recorder.snapshots[-1][0].err
        assert isinstance(err, ExceptionGroup)
        assert [type(e) for e in err.exceptions] == [DoNotRestart]


class TestStopSupervisor:
    """StopSupervisor stops the whole supervisor; run() returns normally."""

    async def test_stop_supervisor_makes_run_return_normally(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """The raiser is STOPPED with its exception, the others are stopped at once."""
        raised = StopSupervisor("job done")

        async def job() -> None:
            await trio.sleep(3)
            raise raised

        config = Config(
            services=[
                new_service("worker", trio.sleep_forever),
                new_service("job", job),
            ],
            status_update_listeners=[recorder],
            restart_interval=1,
        )
        supervisor = Supervisor(config)
        await supervisor.run()
        assert trio.current_time() == 3
        assert recorder.transitions()[-2:] == [
            ("job", STOPPED, 3),
            ("worker", STOPPED, 3),
        ]
        assert recorder.statuses(0) == [IDLE, RUNNING, STOPPED]
        assert recorder.statuses(1) == [IDLE, RUNNING, STOPPED]
        assert supervisor.statuses()[1].err is raised
        assert supervisor.statuses()[0].err is None
        assert not supervisor.running

    async def test_stop_supervisor_stops_the_others_gracefully(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """The other services get their stop request and shutdown timeout."""
        seen: list[float] = []

        async def finisher() -> None:
            await stop_requested().wait()
            seen.append(trio.current_time())
            await trio.sleep(1.5)

        async def stopper() -> None:
            await trio.sleep(4)
            raise StopSupervisor

        config = Config(
            services=[
                new_service("finisher", finisher, shutdown_timeout=2),
                new_service("stopper", stopper),
            ],
            status_update_listeners=[recorder],
        )
        await Supervisor(config).run()
        assert trio.current_time() == 5.5
        assert seen == [4]
        assert recorder.transitions(0) == [
            ("finisher", IDLE, 0),
            ("finisher", RUNNING, 0),
            ("finisher", STOPPED, 5.5),
        ]

    async def test_temporary_stop_supervisor_stops_the_supervisor_too(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """StopSupervisor stops the supervisor whatever the raiser's policy."""

        async def stopper() -> None:
            await trio.sleep(2)
            raise StopSupervisor

        config = Config(
            services=[new_service("a", stopper, restart=Restart.TEMPORARY)],
            status_update_listeners=[recorder],
        )
        await Supervisor(config).run()
        assert trio.current_time() == 2
        assert recorder.transitions() == [
            ("a", IDLE, 0),
            ("a", RUNNING, 0),
            ("a", STOPPED, 2),
        ]


def test_restart_must_be_a_restart() -> None:
    """A restart option that is not a Restart is a TypeError naming it."""
    bad: Any = "transient"
    with pytest.raises(
        TypeError, match=r"^restart must be a Restart, got 'transient'$"
    ):
        new_service("a", returns_after, 1, restart=bad)
