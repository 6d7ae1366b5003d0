"""Ordered start and readiness: id order, task_status.started(), start timeouts."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from conftest import Recorder, run_for

from trio_supervisor import (
    Config,
    Phase,
    Restart,
    ServiceSpec,
    StartTimeout,
    Status,
    Supervisor,
    new_service,
)

IDLE, RUNNING, STOPPED, ERROR = (
    Status.IDLE,
    Status.RUNNING,
    Status.STOPPED,
    Status.ERROR,
)


async def ready_after(
    seconds: float, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    await trio.sleep(seconds)
    task_status.started()
    await trio.sleep_forever()


async def never_ready(
    *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    await trio.sleep_forever()


def per_service(recorder: Recorder, service_id: int) -> list[tuple[Status, float]]:
    return [(s, t) for _, s, t in recorder.transitions(service_id)]


async def test_services_are_scheduled_in_id_order(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """The initial IDLE updates come in id order, all at time 0."""
    config = Config(
        services=[new_service(f"s{n}", trio.sleep_forever) for n in range(5)],
        status_update_listeners=[recorder],
    )
    await run_for(1, config)
    idles = [(n, t) for n, s, t in recorder.transitions() if s is IDLE]
    assert idles == [(f"s{n}", 0) for n in range(5)]


async def test_services_report_running_in_id_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Services without readiness report IDLE then RUNNING in id order (over many
    runs: Trio runs a batch of new tasks in random order, which only decides
    whose first step comes first)."""
    for _ in range(20):
        entered: set[int] = set()
        recorder = Recorder()

        async def service(n: int, entered: set[int]) -> None:
            entered.add(n)
            await trio.sleep_forever()

        config = Config(
            services=[new_service(f"s{n}", service, n, entered) for n in range(4)],
            status_update_listeners=[recorder],
        )
        await run_for(1, config)
        assert entered == {0, 1, 2, 3}
        assert [(n, s) for n, s, _ in recorder.transitions()][:8] == [
            (f"s{n}", status) for n in range(4) for status in (IDLE, RUNNING)
        ]


async def test_ready_service_delays_the_next_until_started(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """With ready=True the next service starts only at task_status.started()."""
    config = Config(
        services=[
            new_service("db", ready_after, 2, ready=True),
            new_service("cache", ready_after, 3, ready=True),
            new_service("api", trio.sleep_forever),
        ],
        status_update_listeners=[recorder],
    )
    await run_for(10, config)
    assert recorder.transitions()[:6] == [
        ("db", IDLE, 0),
        ("db", RUNNING, 2),
        ("cache", IDLE, 2),
        ("cache", RUNNING, 5),
        ("api", IDLE, 5),
        ("api", RUNNING, 5),
    ]
    # The shutdown stops all three at once, in no set order.
    assert sorted(recorder.transitions()[6:]) == [
        ("api", STOPPED, 10),
        ("cache", STOPPED, 10),
        ("db", STOPPED, 10),
    ]


async def test_running_is_reported_at_started_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A ready service is RUNNING from started(), seen in statuses() at once."""
    seen: list[list[tuple[Status, float]]] = []
    supervisor: Supervisor | None = None

    async def service(*, task_status: trio.TaskStatus[None]) -> None:
        assert supervisor is not None
        await trio.sleep(1.5)
        seen.append([(u.status, u.time) for u in supervisor.statuses()])
        task_status.started()
        seen.append([(u.status, u.time) for u in supervisor.statuses()])
        await trio.sleep_forever()

    supervisor = Supervisor(Config(services=[new_service("svc", service, ready=True)]))
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        supervisor.stop()
    assert seen == [[(IDLE, 0)], [(RUNNING, 1.5)]]


async def test_service_object_gets_task_status_with_ready(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A Service object wrapped with ready=True has run() called with task_status."""

    class Server:
        name = "server"

        async def run(
            self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
        ) -> None:
            await trio.sleep(0.5)
            task_status.started()
            await trio.sleep_forever()

    config = Config(
        services=[ServiceSpec(Server(), ready=True)],
        status_update_listeners=[recorder],
    )
    await run_for(2, config)
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0.5), (STOPPED, 2)]


async def test_nursery_start_returns_when_every_service_is_ready(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """await nursery.start(supervisor.run) returns once the last service is ready."""
    supervisor = Supervisor(
        Config(
            services=[
                new_service("a", ready_after, 1, ready=True),
                new_service("b", trio.sleep_forever),
                new_service("c", ready_after, 2.5, ready=True),
            ]
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        assert trio.current_time() == 3.5
        assert supervisor.phase is Phase.RUNNING
        assert [(u.status, u.time) for u in supervisor.statuses()] == [
            (RUNNING, 1),
            (RUNNING, 1),
            (RUNNING, 3.5),
        ]
        assert supervisor.unready_services() == []
        supervisor.stop()
    assert trio.current_time() == 3.5


async def test_startup_does_not_wait_for_a_ready_service_that_keeps_failing(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A ready service whose first run fails before started() and will be
    restarted no longer holds nursery.start(supervisor.run) back."""

    async def never_ready(*, task_status: trio.TaskStatus[None]) -> None:
        await trio.sleep(2)
        raise ValueError("no database")

    supervisor = Supervisor(
        Config(
            services=[new_service("db", never_ready, ready=True)],
            status_update_listeners=[recorder],
            restart_interval=60,
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        assert trio.current_time() == 2
        assert supervisor.phase is Phase.RUNNING
        assert [u.status for u in supervisor.unready_services()] == [ERROR]
        supervisor.stop()
    assert recorder.transitions() == [("db", IDLE, 0), ("db", ERROR, 2)]


async def test_nursery_start_returns_when_a_service_ends_before_ready(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A ready service that fails before started() lets the next one start."""

    async def fails(*, task_status: trio.TaskStatus[None]) -> None:
        await trio.sleep(2)
        raise ValueError("no database")

    supervisor = Supervisor(
        Config(
            services=[
                new_service("db", fails, ready=True, restart=Restart.TEMPORARY),
                new_service("api", ready_after, 1, ready=True),
            ],
            status_update_listeners=[recorder],
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        assert trio.current_time() == 3
        supervisor.stop()
    assert recorder.transitions() == [
        ("db", IDLE, 0),
        ("db", ERROR, 2),
        ("api", IDLE, 2),
        ("api", RUNNING, 3),
        ("api", STOPPED, 3),
    ]


class TestStartTimeout:
    """A ready service that does not call started() in time fails with StartTimeout."""

    async def test_start_timeout_is_an_error_then_a_restart(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """The run is cancelled at start + start_timeout, ERROR, then restarted."""
        config = Config(
            services=[new_service("db", never_ready, ready=True, start_timeout=3)],
            status_update_listeners=[recorder],
            restart_interval=1,
        )
        supervisor = await run_for(8.5, config)
        assert recorder.transitions() == [
            ("db", IDLE, 0),
            ("db", ERROR, 3),
            ("db", IDLE, 4),
            ("db", ERROR, 7),
            ("db", IDLE, 8),
            ("db", STOPPED, 8.5),
        ]
        errors = [u.err for s in recorder.snapshots for u in s if u.status is ERROR]
        assert all(type(e) is StartTimeout for e in errors)
        assert str(errors[0]) == (
            "service 'db' did not call task_status.started() within 3s"
        )
        assert supervisor.statuses()[0].err is None

    async def test_next_service_starts_after_a_start_timeout(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """The next service waits for the timed-out one's end, not longer."""
        config = Config(
            services=[
                new_service(
                    "db",
                    never_ready,
                    ready=True,
                    start_timeout=2,
                    restart=Restart.TEMPORARY,
                ),
                new_service("api", trio.sleep_forever),
            ],
            status_update_listeners=[recorder],
        )
        await run_for(5, config)
        assert recorder.transitions() == [
            ("db", IDLE, 0),
            ("db", ERROR, 2),
            ("api", IDLE, 2),
            ("api", RUNNING, 2),
            ("api", STOPPED, 5),
        ]

    async def test_started_in_time_cancels_the_start_timeout(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A service ready before its start timeout runs on past it."""
        config = Config(
            services=[new_service("db", ready_after, 2.5, ready=True, start_timeout=3)],
            status_update_listeners=[recorder],
        )
        await run_for(60, config)
        assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 2.5), (STOPPED, 60)]

    def test_start_timeout_needs_ready(self) -> None:
        """start_timeout without ready=True is a ValueError."""
        with pytest.raises(
            ValueError,
            match=r"^start_timeout needs ready=True, got start_timeout=3 "
            r"with ready=False$",
        ):
            new_service("db", never_ready, start_timeout=3)

    @pytest.mark.parametrize(
        ("value", "shown"), [(0, "0"), (-1, "-1")], ids=["zero", "negative"]
    )
    def test_start_timeout_must_be_positive(self, value: float, shown: str) -> None:
        """start_timeout must be more than 0 seconds."""
        message = (
            rf"^start_timeout must be > 0 seconds, got {shown}$"
            if value == 0
            else rf"^start_timeout must be a finite number of seconds >= 0, "
            rf"got {shown}$"
        )
        with pytest.raises(ValueError, match=message):
            new_service("db", never_ready, ready=True, start_timeout=value)


async def test_started_twice_is_a_runtime_error(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """Calling task_status.started() a second time raises RuntimeError."""
    raised: list[BaseException] = []

    async def twice(*, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        await trio.sleep(1)
        try:
            task_status.started()
        except RuntimeError as exc:
            raised.append(exc)
        await trio.sleep_forever()

    config = Config(
        services=[new_service("svc", twice, ready=True)],
        status_update_listeners=[recorder],
    )
    await run_for(2, config)
    assert [str(e) for e in raised] == [
        "called 'started' twice on the same task status"
    ]
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 2)]


async def test_ready_service_restart_reports_running_at_started(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """After a restart, a ready service is RUNNING again only at started()."""
    runs = 0

    async def service(*, task_status: trio.TaskStatus[None]) -> None:
        nonlocal runs
        runs += 1
        await trio.sleep(1)
        task_status.started()
        if runs == 1:
            await trio.sleep(2)
            raise ValueError("boom")
        await trio.sleep_forever()

    config = Config(
        services=[new_service("svc", service, ready=True)],
        status_update_listeners=[recorder],
        restart_interval=0.5,
    )
    await run_for(10, config)
    assert per_service(recorder, 0) == [
        (IDLE, 0),
        (RUNNING, 1),
        (ERROR, 3),
        (IDLE, 3.5),
        (RUNNING, 4.5),
        (STOPPED, 10),
    ]
