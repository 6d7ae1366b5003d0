"""Restart intensity: at most max_restarts restarts within any window of max_seconds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from conftest import Recorder, run_for, transitions_of

from trio_supervisor import (
    Backoff,
    Config,
    Restart,
    RestartIntensityExceeded,
    Status,
    Supervisor,
    SupervisorError,
    new_service,
)

IDLE, RUNNING, STOPPED, ERROR = (
    Status.IDLE,
    Status.RUNNING,
    Status.STOPPED,
    Status.ERROR,
)


def fails_every(
    seconds: float, times: int | None = None
) -> Callable[[], Awaitable[None]]:
    """A service function that runs ``seconds`` then fails, ``times`` times
    (forever when None), then sleeps forever."""
    runs = 0

    async def fn() -> None:
        nonlocal runs
        if times is not None and runs >= times:
            await trio.sleep_forever()
        runs += 1
        await trio.sleep(seconds)
        raise ValueError(f"failure {runs}")

    return fn


async def run_expecting_intensity(config: Config) -> RestartIntensityExceeded:
    supervisor = Supervisor(config)
    with pytest.raises(RestartIntensityExceeded) as info:
        await supervisor.run()
    assert type(info.value) is RestartIntensityExceeded
    assert not supervisor.running
    return info.value


class TestValidation:
    """max_restarts and max_seconds are checked with the supervisor's config."""

    def test_intensity_error_is_a_supervisor_error(self) -> None:
        """RestartIntensityExceeded subclasses SupervisorError, an Exception."""
        assert issubclass(RestartIntensityExceeded, SupervisorError)
        assert issubclass(SupervisorError, Exception)

    @pytest.mark.parametrize(
        ("max_restarts", "max_seconds"),
        [(3, None), (None, 5.0)],
        ids=["restarts-only", "seconds-only"],
    )
    def test_fields_go_together(
        self, max_restarts: int | None, max_seconds: float | None
    ) -> None:
        """Setting only one of max_restarts and max_seconds is a ValueError."""
        with pytest.raises(
            ValueError,
            match=(
                r"^Config\.max_restarts and Config\.max_seconds go together, got "
                rf"max_restarts={max_restarts!r} and max_seconds={max_seconds!r}$"
            ),
        ):
            Supervisor(Config(max_restarts=max_restarts, max_seconds=max_seconds))

    def test_negative_max_restarts_is_refused(self) -> None:
        """max_restarts must be at least 0."""
        with pytest.raises(
            ValueError, match=r"^Config\.max_restarts must be >= 0, got -1$"
        ):
            Supervisor(Config(max_restarts=-1, max_seconds=5))

    def test_negative_max_seconds_is_refused(self) -> None:
        """max_seconds must be a finite number of seconds >= 0."""
        with pytest.raises(
            ValueError,
            match=r"^Config\.max_seconds must be a finite number of seconds >= 0, "
            r"got -5$",
        ):
            Supervisor(Config(max_restarts=1, max_seconds=-5))


async def test_limit_reached_but_not_exceeded_keeps_running(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """Exactly max_restarts restarts within the window are allowed."""
    config = Config(
        services=[new_service("a", fails_every(1, times=3))],
        status_update_listeners=[recorder],
        restart_interval=0.5,
        max_restarts=3,
        max_seconds=10,
    )
    supervisor = await run_for(20, config)
    assert recorder.transitions() == [
        ("a", IDLE, 0),
        ("a", RUNNING, 0),
        ("a", ERROR, 1),
        ("a", IDLE, 1.5),
        ("a", RUNNING, 1.5),
        ("a", ERROR, 2.5),
        ("a", IDLE, 3),
        ("a", RUNNING, 3),
        ("a", ERROR, 4),
        ("a", IDLE, 4.5),
        ("a", RUNNING, 4.5),
        ("a", STOPPED, 20),
    ]
    assert not supervisor.running


async def test_intensity_fires_on_the_restart_that_exceeds_the_limit(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """The (max_restarts + 1)-th restart in the window is refused, at its end time."""
    config = Config(
        services=[new_service("a", fails_every(1, times=4))],
        status_update_listeners=[recorder],
        restart_interval=0.5,
        max_restarts=3,
        max_seconds=10,
    )
    exc = await run_expecting_intensity(config)
    assert trio.current_time() == 5.5
    assert recorder.transitions() == [
        ("a", IDLE, 0),
        ("a", RUNNING, 0),
        ("a", ERROR, 1),
        ("a", IDLE, 1.5),
        ("a", RUNNING, 1.5),
        ("a", ERROR, 2.5),
        ("a", IDLE, 3),
        ("a", RUNNING, 3),
        ("a", ERROR, 4),
        ("a", IDLE, 4.5),
        ("a", RUNNING, 4.5),
        ("a", ERROR, 5.5),
    ]
    assert transitions_of(exc.failures) == [
        ("a", ERROR, 1),
        ("a", ERROR, 2.5),
        ("a", ERROR, 4),
        ("a", ERROR, 5.5),
    ]
    assert [str(u.err) for u in exc.failures] == [
        "failure 1",
        "failure 2",
        "failure 3",
        "failure 4",
    ]
    # The failures are the very updates the listeners saw.
    ends = [u for s in recorder.snapshots for u in s if u.status is ERROR]
    assert all(any(f is u for u in ends) for f in exc.failures)
    assert str(exc) == ("4 service ends needed a restart within 10s; at most 3 allowed")


async def test_zero_restarts_allowed_fails_on_the_first_end(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """With max_restarts 0 the first end that needs a restart stops the supervisor."""
    config = Config(
        services=[new_service("a", fails_every(2))],
        status_update_listeners=[recorder],
        max_restarts=0,
        max_seconds=60,
    )
    exc = await run_expecting_intensity(config)
    assert trio.current_time() == 2
    assert transitions_of(exc.failures) == [("a", ERROR, 2)]
    assert str(exc) == "1 service ends needed a restart within 60s; at most 0 allowed"


async def test_restarts_of_all_services_count_together(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """The limit is the supervisor's: restarts of different services add up."""
    config = Config(
        services=[
            new_service("a", fails_every(2)),
            new_service("b", fails_every(3)),
        ],
        status_update_listeners=[recorder],
        max_restarts=2,
        max_seconds=10,
    )
    exc = await run_expecting_intensity(config)
    # a ends at 2 and 4, b at 3: the third restart is needed at 4.
    assert trio.current_time() == 4
    assert transitions_of(exc.failures) == [
        ("a", ERROR, 2),
        ("b", ERROR, 3),
        ("a", ERROR, 4),
    ]


async def test_ends_that_need_no_restart_do_not_count(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """TEMPORARY ends and clean TRANSIENT ends are no restarts."""

    async def returns_after_one() -> None:
        await trio.sleep(1)

    config = Config(
        services=[
            new_service("temp", fails_every(1), restart=Restart.TEMPORARY),
            new_service("trans", returns_after_one, restart=Restart.TRANSIENT),
            new_service("perm", fails_every(4)),
        ],
        status_update_listeners=[recorder],
        max_restarts=1,
        max_seconds=100,
    )
    exc = await run_expecting_intensity(config)
    assert trio.current_time() == 8
    assert transitions_of(exc.failures) == [("perm", ERROR, 4), ("perm", ERROR, 8)]


class TestWindow:
    """Restarts older than max_seconds are forgotten; one exactly that old counts."""

    async def test_spaced_failures_never_exceed_the_limit(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """Failures every 3 s with 2 restarts per 5 s slide out of the window."""
        config = Config(
            services=[new_service("a", fails_every(3))],
            status_update_listeners=[recorder],
            max_restarts=2,
            max_seconds=5,
        )
        await run_for(31, config)
        ends = [t for _, s, t in recorder.transitions() if s is ERROR]
        assert ends == [3, 6, 9, 12, 15, 18, 21, 24, 27, 30]

    async def test_failure_exactly_max_seconds_later_still_counts(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A restart exactly max_seconds before the new one is still in the window."""
        config = Config(
            services=[new_service("a", fails_every(2.5))],
            status_update_listeners=[recorder],
            max_restarts=2,
            max_seconds=5,
        )
        exc = await run_expecting_intensity(config)
        assert trio.current_time() == 7.5
        assert transitions_of(exc.failures) == [
            ("a", ERROR, 2.5),
            ("a", ERROR, 5),
            ("a", ERROR, 7.5),
        ]

    async def test_window_slides_past_an_old_burst(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A burst, a quiet period longer than the window, then a burst of the
        limit again is fine; one more within the new window fires."""
        gaps = iter([1, 1, 10, 1, 1])

        async def bursty() -> None:
            await trio.sleep(next(gaps))
            raise ValueError("boom")

        config = Config(
            services=[new_service("a", bursty)],
            status_update_listeners=[recorder],
            max_restarts=2,
            max_seconds=5,
        )
        exc = await run_expecting_intensity(config)
        # ends at 1, 2 (burst), 12 (1 and 2 forgotten), 13, then 14 is refused.
        assert trio.current_time() == 14
        assert transitions_of(exc.failures) == [
            ("a", ERROR, 12),
            ("a", ERROR, 13),
            ("a", ERROR, 14),
        ]


class TestShutdown:
    """Exceeding the intensity stops every service, then run() raises bare."""

    async def test_all_services_are_stopped(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """Running services are stopped at once; the failed one keeps its ERROR."""
        config = Config(
            services=[
                new_service("steady", trio.sleep_forever),
                new_service("crashy", fails_every(1)),
            ],
            status_update_listeners=[recorder],
            restart_interval=1,
            max_restarts=1,
            max_seconds=10,
        )
        exc = await run_expecting_intensity(config)
        assert trio.current_time() == 3
        assert recorder.transitions(0) == [
            ("steady", IDLE, 0),
            ("steady", RUNNING, 0),
            ("steady", STOPPED, 3),
        ]
        assert recorder.transitions(1) == [
            ("crashy", IDLE, 0),
            ("crashy", RUNNING, 0),
            ("crashy", ERROR, 1),
            ("crashy", IDLE, 2),
            ("crashy", RUNNING, 2),
            ("crashy", ERROR, 3),
        ]
        assert [u.status for u in recorder.snapshots[-1]] == [STOPPED, ERROR]
        assert len(exc.failures) == 2

    async def test_other_services_get_their_graceful_stop(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A service with a shutdown timeout ignoring its stop request delays run()."""
        config = Config(
            services=[
                new_service("slow", trio.sleep_forever, shutdown_timeout=4),
                new_service("crashy", fails_every(1)),
            ],
            status_update_listeners=[recorder],
            max_restarts=0,
            max_seconds=10,
        )
        exc = await run_expecting_intensity(config)
        assert trio.current_time() == 5
        assert recorder.transitions(0)[-1] == ("slow", STOPPED, 5)
        assert transitions_of(exc.failures) == [("crashy", ERROR, 1)]

    async def test_service_waiting_for_restart_keeps_its_status(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A service in its restart delay is cancelled from it and stays ERROR."""
        config = Config(
            services=[
                new_service(
                    "waiting", fails_every(0.5), backoff=Backoff(100, maximum=100)
                ),
                new_service("crashy", fails_every(1)),
            ],
            status_update_listeners=[recorder],
            max_restarts=2,
            max_seconds=10,
        )
        exc = await run_expecting_intensity(config)
        assert trio.current_time() == 2
        assert transitions_of(exc.failures) == [
            ("waiting", ERROR, 0.5),
            ("crashy", ERROR, 1),
            ("crashy", ERROR, 2),
        ]
        assert recorder.transitions(0) == [
            ("waiting", IDLE, 0),
            ("waiting", RUNNING, 0),
            ("waiting", ERROR, 0.5),
        ]
        assert [(u.status, u.time) for u in recorder.snapshots[-1]] == [
            (ERROR, 0.5),
            (ERROR, 2),
        ]

    async def test_nursery_start_raises_bare_after_startup(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Started with nursery.start, the error leaves the caller's nursery."""
        supervisor = Supervisor(
            Config(
                services=[new_service("a", fails_every(1))],
                max_restarts=0,
                max_seconds=1,
            )
        )
        with pytest.RaisesGroup(RestartIntensityExceeded):
            async with trio.open_nursery() as nursery:
                await nursery.start(supervisor.run)
                assert trio.current_time() == 0
        assert trio.current_time() == 1
