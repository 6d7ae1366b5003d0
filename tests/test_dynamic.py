"""Dynamic services: add() and remove() before and while the supervisor runs."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from conftest import Recorder

from trio_supervisor import (
    Config,
    Restart,
    ServiceSpec,
    Status,
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


def per_service(recorder: Recorder, service_id: int) -> list[tuple[Status, float]]:
    return [(s, t) for _, s, t in recorder.transitions(service_id)]


def ids_of(snapshot: list[Any]) -> list[int]:
    return [u.service_id for u in snapshot]


def forever(name: str, **options: Any) -> ServiceSpec:
    return new_service(name, trio.sleep_forever, **options)


async def test_add_while_running_starts_at_once_with_a_new_id(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A service added at 3 is IDLE then RUNNING at 3, with the next id."""
    supervisor = Supervisor(
        Config(
            services=[forever("a"), forever("b")], status_update_listeners=[recorder]
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(3)
        service_id = supervisor.add(forever("c"))
        assert service_id == 2
        await trio.sleep(1)
        assert [(u.service_id, u.status) for u in supervisor.statuses()] == [
            (0, RUNNING),
            (1, RUNNING),
            (2, RUNNING),
        ]
        supervisor.stop()
    assert per_service(recorder, 2) == [(IDLE, 3), (RUNNING, 3), (STOPPED, 4)]
    assert recorder.transitions(2)[0][0] == "c"


async def test_ids_are_never_reused_after_remove(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """Removing the newest service does not give its id to the next one."""
    supervisor = Supervisor(
        Config(services=[forever("a")], status_update_listeners=[recorder])
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        first = supervisor.add(forever("b"))
        await trio.sleep(1)
        await supervisor.remove(first)
        second = supervisor.add(forever("b"))
        await trio.sleep(1)
        await supervisor.remove(0)
        third = supervisor.add(forever("a"))
        await trio.sleep(1)
        supervisor.stop()
    assert (first, second, third) == (1, 2, 3)
    assert ids_of(recorder.snapshots[-1]) == [2, 3]
    assert per_service(recorder, 1) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 1)]
    assert per_service(recorder, 2) == [(IDLE, 1), (RUNNING, 1), (STOPPED, 3)]
    assert per_service(recorder, 3) == [(IDLE, 2), (RUNNING, 2), (STOPPED, 3)]


async def test_remove_stops_gracefully_then_leaves_the_snapshots(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """remove() sets the stop request, waits for the end, then listeners get one
    snapshot without the service."""
    requests: list[float] = []

    async def finisher() -> None:
        await stop_requested().wait()
        requests.append(trio.current_time())
        await trio.sleep(1.5)

    supervisor = Supervisor(
        Config(
            services=[forever("a"), new_service("b", finisher, shutdown_timeout=5)],
            status_update_listeners=[recorder],
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(2)
        await supervisor.remove(1)
        assert trio.current_time() == 3.5
        assert ids_of(supervisor.statuses()) == [0]
        await trio.sleep(1)
        supervisor.stop()
    assert requests == [2]
    assert per_service(recorder, 1) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 3.5)]
    with_b = [s for s in recorder.snapshots if 1 in ids_of(s)]
    assert with_b[-1][1].status is STOPPED
    after = recorder.snapshots[recorder.snapshots.index(with_b[-1]) + 1 :]
    assert [(ids_of(s), s[0].status) for s in after] == [
        ([0], RUNNING),
        ([0], STOPPED),
    ]


async def test_remove_of_an_ignoring_service_waits_for_its_timeout(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A removed service that ignores the request is cancelled after its timeout."""

    async def ignorer() -> None:
        await trio.sleep_forever()

    supervisor = Supervisor(
        Config(
            services=[new_service("a", ignorer, shutdown_timeout=4)],
            status_update_listeners=[recorder],
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(1)
        await supervisor.remove(0)
        assert trio.current_time() == 5
        supervisor.stop()
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 5)]
    assert recorder.snapshots[-1] == []


async def test_removed_service_is_not_restarted(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A service removed while waiting for its restart never runs again."""

    async def fails() -> None:
        await trio.sleep(1)
        raise ValueError("boom")

    supervisor = Supervisor(
        Config(
            services=[new_service("a", fails), forever("b")],
            status_update_listeners=[recorder],
            restart_interval=5,
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(2)
        await supervisor.remove(0)
        assert trio.current_time() == 2
        await trio.sleep(10)
        supervisor.stop()
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (ERROR, 1)]
    assert ids_of(recorder.snapshots[-1]) == [1]


async def test_remove_of_a_service_ended_for_good(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A TEMPORARY service that ended leaves the snapshots at once on remove."""

    async def returns() -> None:
        await trio.sleep(1)

    supervisor = Supervisor(
        Config(
            services=[new_service("a", returns, restart=Restart.TEMPORARY)],
            status_update_listeners=[recorder],
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(2)
        await supervisor.remove(0)
        assert trio.current_time() == 2
        assert supervisor.statuses() == []
        supervisor.stop()
    assert recorder.snapshots[-1] == []
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 1)]


async def test_add_before_run_joins_the_run(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A service added before run() starts with the others, in id order."""
    supervisor = Supervisor(
        Config(services=[forever("a")], status_update_listeners=[recorder])
    )
    assert supervisor.add(forever("b")) == 1
    assert supervisor.statuses() == []
    with trio.move_on_after(2):
        await supervisor.run()
    assert [(n, s, t) for n, s, t in recorder.transitions() if s is IDLE] == [
        ("a", IDLE, 0),
        ("b", IDLE, 0),
    ]
    assert per_service(recorder, 1) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 2)]


async def test_remove_before_run_leaves_the_service_out(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A service removed before run() is not started."""
    supervisor = Supervisor(
        Config(
            services=[forever("a"), forever("b")], status_update_listeners=[recorder]
        )
    )
    await supervisor.remove(0)
    with trio.move_on_after(2):
        await supervisor.run()
    assert [n for n, s, _ in recorder.transitions() if s is IDLE] == ["b"]
    assert ids_of(recorder.snapshots[-1]) == [1]


async def test_add_while_stopping_is_a_runtime_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """add() during shutdown raises RuntimeError naming supervisor and service."""
    supervisor = Supervisor(
        Config(name="sup", services=[forever("slow", shutdown_timeout=3)])
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        supervisor.stop()
        await trio.sleep(1)
        assert supervisor.running
        with pytest.raises(
            RuntimeError, match=r"^supervisor 'sup' is stopping; cannot add 'late'$"
        ):
            supervisor.add(forever("late"))
    assert trio.current_time() == 3
    assert [u.service_name for u in supervisor.statuses()] == ["slow"]


async def test_add_after_run_ended_joins_the_next_run(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """After run() ended, add() is allowed and the service joins the next run."""
    supervisor = Supervisor(
        Config(services=[forever("a")], status_update_listeners=[recorder])
    )
    with trio.move_on_after(1):
        await supervisor.run()
    assert supervisor.add(forever("b")) == 1
    with trio.move_on_after(1):
        await supervisor.run()
    assert per_service(recorder, 1) == [(IDLE, 1), (RUNNING, 1), (STOPPED, 2)]


class TestArguments:
    """add() and remove() check their arguments."""

    async def test_remove_unknown_id_is_a_value_error(self) -> None:
        """An id no service has raises ValueError."""
        supervisor = Supervisor(Config(services=[forever("a")]))
        with pytest.raises(ValueError, match=r"^service_id: no service has id 7$"):
            await supervisor.remove(7)

    async def test_remove_twice_is_a_value_error(self) -> None:
        """A removed id is unknown afterwards."""
        supervisor = Supervisor(Config(services=[forever("a")]))
        await supervisor.remove(0)
        with pytest.raises(ValueError, match=r"^service_id: no service has id 0$"):
            await supervisor.remove(0)

    async def test_remove_wrong_type_is_a_type_error(self) -> None:
        """A service id that is not an int raises TypeError."""
        supervisor = Supervisor(Config(services=[forever("a")]))
        bad: Any = "0"
        with pytest.raises(TypeError, match=r"^service_id must be an int, got '0'$"):
            await supervisor.remove(bad)

    def test_add_a_non_service_is_a_type_error(self) -> None:
        """add() refuses an object without an async run()."""
        supervisor = Supervisor(Config())
        bad: Any = 42
        with pytest.raises(
            TypeError,
            match=r"^service must be a Service \(an object with an async run\(\) "
            r"method\), got 42$",
        ):
            supervisor.add(bad)

    def test_add_a_taken_name_is_a_value_error(self) -> None:
        """Two services of one supervisor cannot share a name."""
        supervisor = Supervisor(Config(services=[forever("a")]))
        with pytest.raises(
            ValueError,
            match=r"^service: service name 'a' is taken by another service; "
            r"give each service a distinct name$",
        ):
            supervisor.add(forever("a"))

    async def test_name_is_free_again_after_remove(self) -> None:
        """A removed service's name may be used again, with a new id."""
        supervisor = Supervisor(Config(services=[forever("a")]))
        await supervisor.remove(0)
        assert supervisor.add(forever("a")) == 1

    def test_options_with_a_spec_are_a_type_error(self) -> None:
        """Options go into a ServiceSpec, not beside it."""
        supervisor = Supervisor(Config())
        with pytest.raises(
            TypeError,
            match=r"^service is a ServiceSpec already, options \['restart'\] "
            r"must be given to it instead$",
        ):
            supervisor.add(forever("a"), restart=Restart.TEMPORARY)


async def test_add_with_options_applies_them(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """add(service, restart=..., ready=...) honours the options."""
    runs: list[float] = []

    class Job:
        name = "job"

        async def run(
            self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
        ) -> None:
            runs.append(trio.current_time())
            await trio.sleep(1)
            task_status.started()
            await trio.sleep(1)
            raise ValueError("boom")

    supervisor = Supervisor(Config(status_update_listeners=[recorder]))
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(1)
        service_id = supervisor.add(Job(), restart=Restart.TEMPORARY, ready=True)
        await trio.sleep(5)
        supervisor.stop()
    assert service_id == 0
    assert runs == [1]
    assert per_service(recorder, 0) == [(IDLE, 1), (RUNNING, 2), (ERROR, 3)]


async def test_add_a_service_spec(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """add(ServiceSpec(...)) takes the spec's options."""

    async def fails() -> None:
        await trio.sleep(1)
        raise ValueError("boom")

    supervisor = Supervisor(
        Config(services=[forever("a")], status_update_listeners=[recorder])
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(2)
        supervisor.add(new_service("b", fails, restart=Restart.TRANSIENT))
        supervisor.add(
            ServiceSpec(new_service("c", fails).service, restart=Restart.TEMPORARY)
        )
        await trio.sleep(2.5)
        supervisor.stop()
    assert per_service(recorder, 1) == [
        (IDLE, 2),
        (RUNNING, 2),
        (ERROR, 3),
        (IDLE, 3),
        (RUNNING, 3),
        (ERROR, 4),
        (IDLE, 4),
        (RUNNING, 4),
        (STOPPED, 4.5),
    ]
    assert per_service(recorder, 2) == [(IDLE, 2), (RUNNING, 2), (ERROR, 3)]


async def test_snapshots_stay_in_id_order(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """Every snapshot lists its services by increasing id, through adds and removes."""
    supervisor = Supervisor(
        Config(
            services=[forever("a"), forever("b")], status_update_listeners=[recorder]
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        supervisor.add(forever("c"))
        await trio.sleep(1)
        await supervisor.remove(1)
        supervisor.add(forever("b"))
        await trio.sleep(1)
        supervisor.stop()
    assert all(ids_of(s) == sorted(ids_of(s)) for s in recorder.snapshots)
    assert ids_of(recorder.snapshots[-1]) == [0, 2, 3]
