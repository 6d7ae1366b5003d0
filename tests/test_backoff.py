"""Backoff: validation, the delay sequence with jitter, the cap, the reset after a
healthy period, and the per-service policy over the supervisor's default."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
import trio
import trio.testing
from conftest import Recorder, run_for
from hypothesis import given
from hypothesis import strategies as st

from trio_supervisor import (
    Backoff,
    Config,
    ServiceSpec,
    Status,
    Supervisor,
    new_service,
)

IDLE, RUNNING, ERROR = Status.IDLE, Status.RUNNING, Status.ERROR


def jumped(now: float, delay: float) -> float:
    """The clock after an autojump from ``now`` to the deadline ``now + delay``.

    MockClock adds ``deadline - now`` to its time, which can differ from the
    deadline in the last bit; expected times follow the same arithmetic.
    """
    return now + ((now + delay) - now)


async def fails_at_once() -> None:
    await trio.lowlevel.checkpoint()
    raise ValueError("boom")


def idle_times(recorder: Recorder, service_id: int = 0) -> list[float]:
    return [t for _, status, t in recorder.transitions(service_id) if status is IDLE]


class TestValidation:
    """Every Backoff field is checked, with an error naming it and its value."""

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            (
                {"initial": -1},
                r"^Backoff\.initial must be a finite number of seconds >= 0, got -1$",
            ),
            (
                {"initial": math.nan},
                r"^Backoff\.initial must be a finite number of seconds >= 0, got nan$",
            ),
            (
                {"initial": 1, "maximum": math.inf},
                r"^Backoff\.maximum must be a finite number of seconds >= 0, got inf$",
            ),
            (
                {"initial": 1, "reset_after": -0.5},
                r"^Backoff\.reset_after must be a finite number of seconds >= 0, "
                r"got -0\.5$",
            ),
            (
                {"initial": 1, "multiplier": 0.5},
                r"^Backoff\.multiplier must be a finite number >= 1, got 0\.5$",
            ),
            (
                {"initial": 1, "multiplier": math.inf},
                r"^Backoff\.multiplier must be a finite number >= 1, got inf$",
            ),
            (
                {"initial": 1, "multiplier": math.nan},
                r"^Backoff\.multiplier must be a finite number >= 1, got nan$",
            ),
            (
                {"initial": 1, "jitter": -0.1},
                r"^Backoff\.jitter must be between 0 and 1, got -0\.1$",
            ),
            (
                {"initial": 1, "jitter": 1.5},
                r"^Backoff\.jitter must be between 0 and 1, got 1\.5$",
            ),
            (
                {"initial": 5, "maximum": 1},
                r"^Backoff\.maximum must be >= initial \(5\.0\), got 1\.0$",
            ),
        ],
        ids=[
            "negative-initial",
            "nan-initial",
            "infinite-maximum",
            "negative-reset_after",
            "multiplier-below-1",
            "infinite-multiplier",
            "nan-multiplier",
            "negative-jitter",
            "jitter-above-1",
            "maximum-below-initial",
        ],
    )
    def test_bad_values_raise_value_error(
        self, kwargs: dict[str, Any], message: str
    ) -> None:
        """A value out of range raises ValueError naming the field and the value."""
        with pytest.raises(ValueError, match=message):
            Backoff(**kwargs)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            (
                {"initial": "1"},
                r"^Backoff\.initial must be a number of seconds or a "
                r"datetime\.timedelta, got '1'$",
            ),
            (
                {"initial": 1, "multiplier": True},
                r"^Backoff\.multiplier must be a number, got True$",
            ),
            (
                {"initial": 1, "jitter": "0.1"},
                r"^Backoff\.jitter must be a number, got '0\.1'$",
            ),
            (
                {"initial": 1, "rng": 42},
                r"^Backoff\.rng must be a random\.Random, got 42$",
            ),
        ],
        ids=["str-initial", "bool-multiplier", "str-jitter", "int-rng"],
    )
    def test_bad_types_raise_type_error(
        self, kwargs: dict[str, Any], message: str
    ) -> None:
        """A value of the wrong kind raises TypeError naming the field and the value."""
        with pytest.raises(TypeError, match=message):
            Backoff(**kwargs)

    def test_numbers_are_normalised_to_floats(self) -> None:
        """Integer fields become floats; the defaults are those of the issue."""
        backoff = Backoff(1)
        assert backoff == Backoff(1.0, 2.0, 60.0, 0.0, 60.0)
        assert type(backoff.initial) is float
        assert type(backoff.multiplier) is float
        assert backoff.rng is None

    def test_backoff_is_frozen(self) -> None:
        """A Backoff cannot change once made."""
        backoff = Backoff(1)
        field_name = "initial"
        with pytest.raises(AttributeError):
            setattr(backoff, field_name, 2.0)

    def test_config_and_spec_refuse_a_non_backoff(self) -> None:
        """Config.backoff and a service's backoff must be a Backoff or None."""
        bad: Any = 1.5
        with pytest.raises(
            TypeError, match=r"^Config\.backoff must be a Backoff or None, got 1\.5$"
        ):
            Supervisor(Config(backoff=bad))
        with pytest.raises(
            TypeError, match=r"^backoff must be a Backoff or None, got 1\.5$"
        ):
            new_service("a", fails_at_once, backoff=bad)


class TestDelay:
    """Backoff.delay(n): the n-th consecutive restart's wait."""

    def test_delays_grow_exponentially_up_to_the_cap(self) -> None:
        """Without jitter the delays are initial * multiplier**n, capped."""
        backoff = Backoff(0.5, maximum=4.0)
        assert [backoff.delay(n) for n in range(6)] == [0.5, 1, 2, 4, 4, 4]
        backoff = Backoff(1, multiplier=3, maximum=20)
        assert [backoff.delay(n) for n in range(5)] == [1, 3, 9, 20, 20]

    def test_multiplier_one_gives_a_constant_delay(self) -> None:
        """With multiplier 1 every restart waits the initial delay."""
        backoff = Backoff(2.5, multiplier=1)
        assert [backoff.delay(n) for n in range(4)] == [2.5] * 4

    def test_huge_attempt_gives_the_cap(self) -> None:
        """An attempt whose power overflows a float waits the maximum."""
        backoff = Backoff(1, multiplier=10, maximum=30)
        assert backoff.delay(10_000) == 30
        assert Backoff(1, jitter=0.5, maximum=30, rng=random.Random(1)).delay(
            10_000
        ) == 30 * random.Random(1).uniform(0.5, 1.5)

    def test_seeded_jitter_gives_the_exact_sequence(self) -> None:
        """Jitter multiplies each capped delay by rng.uniform(1 - j, 1 + j)."""
        backoff = Backoff(0.5, maximum=3.0, jitter=0.25, rng=random.Random(1234))
        twin = random.Random(1234)
        expected = [
            base * twin.uniform(0.75, 1.25) for base in (0.5, 1.0, 2.0, 3.0, 3.0)
        ]
        assert [backoff.delay(n) for n in range(5)] == expected
        assert len(set(expected)) == 5

    def test_no_draw_without_jitter(self) -> None:
        """With jitter 0 the generator is never used."""
        rng = random.Random(5)
        state = rng.getstate()
        backoff = Backoff(1, rng=rng)
        assert [backoff.delay(n) for n in range(3)] == [1, 2, 4]
        assert rng.getstate() == state

    def test_rng_none_uses_the_random_module(self) -> None:
        """Without an rng the jitter comes from the random module's generator."""
        backoff = Backoff(1, jitter=0.5)
        random.seed(99)
        first = backoff.delay(0)
        twin = random.Random(99)
        assert first == twin.uniform(0.5, 1.5)

    def test_rng_is_not_compared(self) -> None:
        """Two backoffs that differ only by their generator are equal."""
        assert Backoff(1, rng=random.Random(1)) == Backoff(1, rng=random.Random(2))


@st.composite
def backoffs(draw: st.DrawFn) -> Backoff:
    initial = draw(st.floats(0, 1e6))
    maximum = draw(st.floats(initial, 1e9))
    multiplier = draw(st.floats(1, 1e3))
    jitter = draw(st.sampled_from([0.0, 1.0]) | st.floats(0, 1))
    seed = draw(st.integers(0, 2**32))
    return Backoff(initial, multiplier, maximum, jitter, rng=random.Random(seed))


def capped(backoff: Backoff, attempt: int) -> float:
    try:
        return min(backoff.initial * backoff.multiplier**attempt, backoff.maximum)
    except OverflowError:
        return backoff.maximum


@given(backoff=backoffs(), attempt=st.integers(0, 5000))
def test_delay_stays_within_the_jitter_band(backoff: Backoff, attempt: int) -> None:
    """For all valid parameters delay(n) is in the jitter band of the capped delay."""
    base = capped(backoff, attempt)
    delay = backoff.delay(attempt)
    assert base * (1 - backoff.jitter) <= delay <= base * (1 + backoff.jitter)
    assert delay <= backoff.maximum * (1 + backoff.jitter)


@given(backoff=backoffs(), attempt=st.integers(0, 5000))
def test_delay_is_monotone_without_jitter(backoff: Backoff, attempt: int) -> None:
    """Without jitter delay(n) never decreases with n and equals the capped delay."""
    plain = Backoff(backoff.initial, backoff.multiplier, backoff.maximum, reset_after=1)
    assert plain.delay(attempt) == capped(plain, attempt)
    assert plain.delay(attempt) <= plain.delay(attempt + 1) <= plain.maximum


class TestSupervisedBackoff:
    """A supervisor waits the backoff's delays between a service's end and restart."""

    async def test_restart_times_follow_the_backoff(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A service failing at once restarts after 1, 2, 4, 8 then 8 capped seconds."""
        config = Config(
            services=[new_service("a", fails_at_once, backoff=Backoff(1, maximum=8))],
            status_update_listeners=[recorder],
            restart_interval=100,
        )
        await run_for(30, config)
        assert idle_times(recorder) == [0, 1, 3, 7, 15, 23]
        assert recorder.transitions()[:6] == [
            ("a", IDLE, 0),
            ("a", RUNNING, 0),
            ("a", ERROR, 0),
            ("a", IDLE, 1),
            ("a", RUNNING, 1),
            ("a", ERROR, 1),
        ]

    async def test_seeded_jitter_gives_exact_restart_times(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """Restart times with a seeded generator are exactly a twin generator's."""
        backoff = Backoff(1, maximum=5, jitter=0.5, rng=random.Random(2024))
        config = Config(
            services=[new_service("a", fails_at_once, backoff=backoff)],
            status_update_listeners=[recorder],
        )
        await run_for(20, config)
        twin = random.Random(2024)
        expected = [0.0]
        for base in (1, 2, 4, 5, 5, 5, 5, 5):
            delay = base * twin.uniform(0.5, 1.5)
            if expected[-1] + delay >= 20:
                break
            expected.append(jumped(expected[-1], delay))
        assert idle_times(recorder) == expected
        assert len(expected) >= 5

    async def test_count_resets_after_a_healthy_period(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A run that stayed RUNNING for reset_after seconds restarts after initial."""
        runs = 0

        async def flaky() -> None:
            nonlocal runs
            runs += 1
            if runs == 4:
                await trio.sleep(5)
            await trio.lowlevel.checkpoint()
            raise ValueError("boom")

        config = Config(
            services=[
                new_service("a", flaky, backoff=Backoff(1, maximum=100, reset_after=5))
            ],
            status_update_listeners=[recorder],
        )
        await run_for(16, config)
        # 0 -1-> 1 -2-> 3 -4-> 7, healthy 7..12, -1-> 13 -2-> 15
        assert idle_times(recorder) == [0, 1, 3, 7, 13, 15]
        ends = [t for _, s, t in recorder.transitions() if s is ERROR]
        assert ends == [0, 1, 3, 12, 13, 15]

    async def test_count_does_not_reset_before_the_healthy_period(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A run shorter than reset_after keeps the count growing."""
        runs = 0

        async def flaky() -> None:
            nonlocal runs
            runs += 1
            if runs == 4:
                await trio.sleep(4.5)
            await trio.lowlevel.checkpoint()
            raise ValueError("boom")

        config = Config(
            services=[
                new_service("a", flaky, backoff=Backoff(1, maximum=100, reset_after=5))
            ],
            status_update_listeners=[recorder],
        )
        await run_for(20, config)
        # 0 -1-> 1 -2-> 3 -4-> 7, runs until 11.5, -8-> 19.5
        assert idle_times(recorder) == [0, 1, 3, 7, 19.5]

    async def test_service_backoff_overrides_the_config_default(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """A service's backoff wins; the others use Config.backoff, not the interval."""

        class Failing:
            name = "spec"

            async def run(self) -> None:
                await fails_at_once()

        config = Config(
            services=[
                new_service("own", fails_at_once, backoff=Backoff(0.5, multiplier=1)),
                new_service("default", fails_at_once),
                ServiceSpec(Failing(), backoff=Backoff(3, multiplier=1)),
            ],
            status_update_listeners=[recorder],
            restart_interval=100,
            backoff=Backoff(2, maximum=4),
        )
        await run_for(10.75, config)
        assert idle_times(recorder, 0) == [n * 0.5 for n in range(22)]
        assert idle_times(recorder, 1) == [0, 2, 6, 10]
        assert idle_times(recorder, 2) == [0, 3, 6, 9]

    async def test_no_backoff_keeps_the_fixed_interval(
        self, autojump_clock: trio.testing.MockClock, recorder: Recorder
    ) -> None:
        """With Config.backoff None every restart waits restart_interval."""
        config = Config(
            services=[new_service("a", fails_at_once)],
            status_update_listeners=[recorder],
            restart_interval=1.5,
        )
        await run_for(7, config)
        assert idle_times(recorder) == [0, 1.5, 3, 4.5, 6]


async def test_ready_service_healthy_period_counts_from_started(
    autojump_clock: trio.testing.MockClock, recorder: Recorder
) -> None:
    """For a ready service the healthy period runs from started(), not run start."""
    runs = 0

    async def service(*, task_status: trio.TaskStatus[None]) -> None:
        nonlocal runs
        runs += 1
        if runs == 2:
            # 4 s to get ready, then 2 s RUNNING: 6 s in the run, 2 s healthy.
            await trio.sleep(4)
            task_status.started()
            await trio.sleep(2)
        raise ValueError("boom")

    config = Config(
        services=[
            new_service(
                "a",
                service,
                ready=True,
                backoff=Backoff(1, maximum=100, reset_after=3),
            )
        ],
        status_update_listeners=[recorder],
    )
    await run_for(12, config)
    # 0 -1-> 1, runs until 7, -2-> 9 (no reset) -4-> 13.
    assert idle_times(recorder) == [0, 1, 9]
    assert [(s, t) for _, s, t in recorder.transitions()] == [
        (IDLE, 0),
        (ERROR, 0),
        (IDLE, 1),
        (RUNNING, 5),
        (ERROR, 7),
        (IDLE, 9),
        (ERROR, 9),
    ]
