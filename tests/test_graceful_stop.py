"""Graceful stop: the stop request, shutdown timeouts, the slow-stop warning,
reverse shutdown, and supervisor.stop()."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import trio
import trio.testing
from conftest import Recorder, run_for

from trio_supervisor import (
    Config,
    Phase,
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


class TrioTimeHandler(logging.Handler):
    """Keeps (trio time, level, message) of every record."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[float, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((trio.current_time(), record.levelno, record.getMessage()))

    def warnings(self) -> list[tuple[float, str]]:
        return [(t, m) for t, level, m in self.records if level == logging.WARNING]


@pytest.fixture
def log(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[logging.Logger, TrioTimeHandler]]:
    logger = logging.getLogger(f"test_graceful_stop.{request.node.name}")
    handler = TrioTimeHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)


def per_service(recorder: Recorder, service_id: int) -> list[tuple[Status, float]]:
    return [(s, t) for _, s, t in recorder.transitions(service_id)]


def finishes_in(seconds: float, requests: list[float]) -> Callable[[], Awaitable[None]]:
    """A service that, asked to stop, notes the time and finishes ``seconds`` later."""

    async def fn() -> None:
        await stop_requested().wait()
        requests.append(trio.current_time())
        await trio.sleep(seconds)

    return fn


async def ignores(requests: list[float]) -> None:
    await stop_requested().wait()
    requests.append(trio.current_time())
    await trio.sleep_forever()


async def test_stop_request_is_an_event_set_on_stop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """stop_requested() is a trio.Event, unset while running, set on stop."""
    events: list[trio.Event] = []
    states: list[bool] = []

    async def service() -> None:
        event = stop_requested()
        events.append(event)
        assert stop_requested() is event
        states.append(event.is_set())
        try:
            await trio.sleep_forever()
        finally:
            states.append(event.is_set())

    await run_for(3, Config(services=[new_service("svc", service)]))
    assert len(events) == 1
    assert isinstance(events[0], trio.Event)
    assert states == [False, True]


async def test_each_run_gets_a_fresh_stop_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A restarted service gets a new event, not the one of its last run."""
    events: list[trio.Event] = []

    async def service() -> None:
        events.append(stop_requested())
        await trio.sleep(1)
        raise ValueError("boom")

    await run_for(2.5, Config(services=[new_service("svc", service)]))
    assert len(events) == 3
    assert len({id(e) for e in events}) == 3
    assert [e.is_set() for e in events] == [False, False, True]


async def test_event_asked_for_after_the_request_is_already_set(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A service that looks at stop_requested() only after the request sees it set."""
    seen: list[tuple[float, bool]] = []

    async def service() -> None:
        with trio.CancelScope(shield=True):
            await trio.sleep(7)
        seen.append((trio.current_time(), stop_requested().is_set()))

    await run_for(5, Config(services=[new_service("svc", service, shutdown_timeout=9)]))
    assert seen == [(7, True)]


async def test_service_finishing_within_its_timeout_ends_at_its_own_time(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """Asked to stop at 10 with 3 s to go, a service that takes 1.5 s ends at 11.5."""
    requests: list[float] = []
    config = Config(
        services=[new_service("svc", finishes_in(1.5, requests), shutdown_timeout=3)],
        status_update_listeners=[recorder],
    )
    supervisor = Supervisor(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(10)
        supervisor.stop()
        assert supervisor.phase is Phase.STOPPING
    assert trio.current_time() == 11.5
    assert requests == [10]
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 11.5)]


async def test_service_ignoring_the_request_is_cancelled_after_its_timeout(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A service ignoring the request is cancelled exactly shutdown_timeout later."""
    requests: list[float] = []
    config = Config(
        services=[new_service("svc", ignores, requests)],
        status_update_listeners=[recorder],
        shutdown_timeout=4,
    )
    supervisor = Supervisor(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(10)
        supervisor.stop()
    assert trio.current_time() == 14
    assert requests == [10]
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 14)]


async def test_service_timeout_overrides_the_config_default(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """Each service is cancelled after its own timeout, else the config's."""
    requests: list[float] = []
    config = Config(
        services=[
            new_service("own", ignores, requests, shutdown_timeout=1),
            new_service("default", ignores, requests),
            new_service("zero", ignores, requests, shutdown_timeout=0),
        ],
        status_update_listeners=[recorder],
        shutdown_timeout=3,
    )
    await run_for(5, config)
    assert trio.current_time() == 8
    assert requests == [5, 5, 5]
    assert [per_service(recorder, i)[-1] for i in range(3)] == [
        (STOPPED, 6),
        (STOPPED, 8),
        (STOPPED, 5),
    ]


async def test_default_timeout_cancels_at_once_after_the_request(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """With shutdown_timeout 0 the service is cancelled at the request, event set."""
    states: list[tuple[float, bool]] = []

    async def service() -> None:
        event = stop_requested()
        try:
            await trio.sleep_forever()
        finally:
            states.append((trio.current_time(), event.is_set()))

    await run_for(
        2,
        Config(
            services=[new_service("svc", service)], status_update_listeners=[recorder]
        ),
    )
    assert states == [(2, True)]
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 2)]


async def test_service_waiting_for_restart_keeps_its_last_status(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """A service in its restart delay is cancelled from it and stays ERROR."""

    async def fails() -> None:
        await trio.sleep(1)
        raise ValueError("boom")

    config = Config(
        services=[new_service("svc", fails, shutdown_timeout=5)],
        status_update_listeners=[recorder],
        restart_interval=10,
    )
    await run_for(4, config)
    assert trio.current_time() == 4
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (ERROR, 1)]


class TestSlowStopWarning:
    """A service not ended after its timeout is named in a WARNING."""

    async def test_shielded_service_is_named_at_the_documented_times(
        self,
        autojump_clock: trio.testing.MockClock,
        recorder: Recorder,
        log: tuple[logging.Logger, TrioTimeHandler],
    ) -> None:
        """Stop at 5, timeout 2: warnings at 8, 14, 26 (doubling), end at 30."""
        logger, handler = log

        async def stubborn() -> None:
            with trio.CancelScope(shield=True):
                await trio.sleep(30)

        config = Config(
            services=[
                new_service("stubborn", stubborn, shutdown_timeout=2),
                new_service("quick", trio.sleep_forever),
            ],
            status_update_listeners=[recorder],
            logger=logger,
        )
        await run_for(5, config)
        assert trio.current_time() == 30
        assert handler.warnings() == [
            (8, "still waiting for 1 service(s) to stop: stubborn"),
            (14, "still waiting for 1 service(s) to stop: stubborn"),
            (26, "still waiting for 1 service(s) to stop: stubborn"),
        ]
        assert per_service(recorder, 0)[-1] == (STOPPED, 30)
        assert per_service(recorder, 1)[-1] == (STOPPED, 5)

    async def test_warning_names_every_late_service(
        self,
        autojump_clock: trio.testing.MockClock,
        log: tuple[logging.Logger, TrioTimeHandler],
    ) -> None:
        """The warning counts and names each service still running, in id order."""
        logger, handler = log

        async def stubborn(seconds: float) -> None:
            with trio.CancelScope(shield=True):
                await trio.sleep(seconds)

        config = Config(
            services=[
                new_service("x", stubborn, 20),
                new_service("y", stubborn, 6),
                new_service("z", stubborn, 20, shutdown_timeout=3),
            ],
            logger=logger,
        )
        await run_for(1, config)
        assert trio.current_time() == 20
        # longest timeout 3: first warning at 1 + 3 + 1 = 5, then 13.
        assert handler.warnings() == [
            (5, "still waiting for 3 service(s) to stop: x, y, z"),
            (13, "still waiting for 2 service(s) to stop: x, z"),
        ]

    async def test_no_warning_when_every_service_ends_in_time(
        self,
        autojump_clock: trio.testing.MockClock,
        log: tuple[logging.Logger, TrioTimeHandler],
    ) -> None:
        """Services that end within their timeout log no warning."""
        logger, handler = log
        requests: list[float] = []
        config = Config(
            services=[new_service("svc", ignores, requests, shutdown_timeout=2)],
            logger=logger,
        )
        await run_for(1, config)
        assert trio.current_time() == 3
        assert handler.warnings() == []


class TestCallerCancellation:
    """Cancelling run() from outside is a graceful shutdown like any other."""

    async def test_each_service_gets_its_request_and_timeout(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """Cancelled by the caller at 10, services end at 11 and 12, then run() ends."""
        requests: list[float] = []
        config = Config(
            services=[
                new_service("finisher", finishes_in(1, requests), shutdown_timeout=5),
                new_service("ignorer", ignores, requests, shutdown_timeout=2),
            ],
            status_update_listeners=[recorder],
        )
        supervisor = Supervisor(config)
        with trio.move_on_after(10) as scope:
            await supervisor.run()
        assert scope.cancelled_caught
        assert trio.current_time() == 12
        assert requests == [10, 10]
        assert per_service(recorder, 0)[-1] == (STOPPED, 11)
        assert per_service(recorder, 1)[-1] == (STOPPED, 12)

    async def test_run_raises_bare_cancelled(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A cancelled run() raises trio.Cancelled itself, not a group."""
        supervisor = Supervisor(
            Config(services=[new_service("svc", trio.sleep_forever)])
        )
        caught: list[BaseException] = []
        with trio.CancelScope() as scope:
            scope.deadline = 3
            try:
                await supervisor.run()
            except BaseException as exc:
                caught.append(exc)
                raise
        assert [type(e) for e in caught] == [trio.Cancelled]
        assert trio.current_time() == 3


class TestReverseShutdown:
    """reverse_shutdown stops one service at a time, in reverse id order."""

    async def test_services_stop_one_at_a_time_in_reverse_order(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """Each stop request comes when the later service has ended."""
        requests: list[float] = []
        order: list[str] = []

        def service(name: str, seconds: float) -> ServiceSpec:
            async def fn() -> None:
                await stop_requested().wait()
                requests.append(trio.current_time())
                order.append(name)
                await trio.sleep(seconds)

            return new_service(name, fn, shutdown_timeout=5)

        config = Config(
            services=[service("a", 1), service("b", 0.5), service("c", 2)],
            status_update_listeners=[recorder],
            reverse_shutdown=True,
        )
        await run_for(10, config)
        assert order == ["c", "b", "a"]
        assert requests == [10, 12, 12.5]
        assert trio.current_time() == 13.5
        assert recorder.transitions()[-3:] == [
            ("c", STOPPED, 12),
            ("b", STOPPED, 12.5),
            ("a", STOPPED, 13.5),
        ]

    async def test_each_ignoring_service_gets_its_full_timeout(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """Services ignoring the request are cancelled one after the other."""
        requests: list[float] = []
        config = Config(
            services=[
                new_service("a", ignores, requests, shutdown_timeout=1),
                new_service("b", ignores, requests, shutdown_timeout=2),
                new_service("c", ignores, requests, shutdown_timeout=3),
            ],
            status_update_listeners=[recorder],
            reverse_shutdown=True,
        )
        await run_for(10, config)
        assert requests == [10, 13, 15]
        assert recorder.transitions()[-3:] == [
            ("c", STOPPED, 13),
            ("b", STOPPED, 15),
            ("a", STOPPED, 16),
        ]

    async def test_concurrent_stop_is_the_default(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """Without reverse_shutdown every service is asked to stop at once."""
        requests: list[float] = []
        config = Config(
            services=[
                new_service("a", ignores, requests, shutdown_timeout=1),
                new_service("b", ignores, requests, shutdown_timeout=2),
                new_service("c", ignores, requests, shutdown_timeout=3),
            ],
            status_update_listeners=[recorder],
        )
        await run_for(10, config)
        assert requests == [10, 10, 10]
        assert recorder.transitions()[-3:] == [
            ("a", STOPPED, 11),
            ("b", STOPPED, 12),
            ("c", STOPPED, 13),
        ]


class TestStopMethod:
    """supervisor.stop() ends run() normally after a graceful stop."""

    async def test_stop_returns_run_normally(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """stop() from another task makes run() return without an exception."""
        supervisor = Supervisor(
            Config(
                services=[new_service("svc", trio.sleep_forever)],
                status_update_listeners=[recorder],
            )
        )
        returned: list[float] = []

        async def run() -> None:
            await supervisor.run()
            returned.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            await trio.sleep(4)
            supervisor.stop()
            supervisor.stop()
        assert returned == [4]
        assert supervisor.phase is Phase.STOPPED
        assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 4)]

    async def test_stop_from_a_service_stops_the_supervisor(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A service may call stop() on its own supervisor; run() returns normally."""
        holder: list[Supervisor] = []

        async def stopper() -> None:
            await trio.sleep(2)
            holder[0].stop()
            await trio.sleep_forever()

        supervisor = Supervisor(
            Config(
                services=[new_service("stopper", stopper)],
                status_update_listeners=[recorder],
            )
        )
        holder.append(supervisor)
        await supervisor.run()
        assert trio.current_time() == 2
        assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 2)]

    async def test_stop_when_not_running_is_a_no_op(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """stop() before run() changes nothing: the next run() runs normally."""
        supervisor = Supervisor(
            Config(
                services=[new_service("svc", trio.sleep_forever)],
                status_update_listeners=[recorder],
            )
        )
        supervisor.stop()
        assert supervisor.phase is Phase.IDLE
        with trio.move_on_after(3):
            await supervisor.run()
        assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 3)]


def test_negative_config_shutdown_timeout_is_refused() -> None:
    """A negative Config.shutdown_timeout is a ValueError naming the field."""
    with pytest.raises(
        ValueError,
        match=r"^Config\.shutdown_timeout must be a finite number of seconds >= 0, "
        r"got -1$",
    ):
        Supervisor(Config(shutdown_timeout=-1))


def test_negative_service_shutdown_timeout_is_refused() -> None:
    """A negative per-service shutdown_timeout is a ValueError naming the option."""
    with pytest.raises(
        ValueError,
        match=r"^shutdown_timeout must be a finite number of seconds >= 0, got -1$",
    ):
        new_service("svc", trio.sleep_forever, shutdown_timeout=-1)


async def test_cancel_during_startup_still_stops_gracefully(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """Cancelled while a ready service is not ready yet, run() still gives every
    started service its stop request and timeout."""
    requests: list[tuple[str, float]] = []

    async def slow_start(*, task_status: trio.TaskStatus[None]) -> None:
        await stop_requested().wait()
        requests.append(("slow_start", trio.current_time()))
        await trio.sleep(1)

    async def first() -> None:
        await stop_requested().wait()
        requests.append(("first", trio.current_time()))
        await trio.sleep_forever()

    config = Config(
        services=[
            new_service("first", first, shutdown_timeout=3),
            new_service("slow_start", slow_start, ready=True, shutdown_timeout=2),
            new_service("never", trio.sleep_forever),
        ],
        status_update_listeners=[recorder],
    )
    supervisor = Supervisor(config)
    with trio.move_on_after(5):
        await supervisor.run()
    assert trio.current_time() == 8
    assert sorted(requests) == [("first", 5), ("slow_start", 5)]
    assert per_service(recorder, 0) == [(IDLE, 0), (RUNNING, 0), (STOPPED, 8)]
    assert per_service(recorder, 1) == [(IDLE, 0), (STOPPED, 6)]
    assert per_service(recorder, 2) == []


def test_reverse_shutdown_must_be_a_bool() -> None:
    """Config.reverse_shutdown is checked as a bool."""
    bad: Any = 1
    with pytest.raises(
        TypeError, match=r"^Config\.reverse_shutdown must be a bool, got 1$"
    ):
        Supervisor(Config(reverse_shutdown=bad))
