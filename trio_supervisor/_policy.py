"""When a service restarts, how long the supervisor waits, and what else restarts."""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field
from typing import final

from . import _util


@final
class Restart(enum.Enum):
    """Which ends of a run lead to a restart (Erlang/OTP's restart types).

    For example:

        new_service("migrate", migrate, restart=Restart.TRANSIENT)
    """

    PERMANENT = "permanent"
    """Always restart, after a clean stop too (the default, as the seed)."""
    TRANSIENT = "transient"
    """Restart only after `ERROR` or `PANIC`."""
    TEMPORARY = "temporary"
    """Never restart."""


@final
class Strategy(enum.Enum):
    """Which services a restart takes along (Erlang/OTP's strategies).

    For example:

        Config(services=[db, cache, api], strategy=Strategy.REST_FOR_ONE)
    """

    ONE_FOR_ONE = "one_for_one"
    """Restart only the service that ended (the default)."""
    ONE_FOR_ALL = "one_for_all"
    """Stop every other service too, then start all again in id order."""
    REST_FOR_ONE = "rest_for_one"
    """Stop the services started after it, then start them again in id order."""


@final
@dataclass(frozen=True)
class Backoff:
    """Exponential restart delays with jitter, reset after a healthy period.

    The n-th consecutive restart (n from 0) waits
    ``min(initial * multiplier**n, maximum)`` seconds, times a factor drawn
    from ``rng.uniform(1 - jitter, 1 + jitter)`` (no draw when ``jitter`` is
    0). A run that stayed `RUNNING` for ``reset_after`` seconds
    starts the count again at 0:

        >>> backoff = Backoff(0.5, maximum=4.0)
        >>> [backoff.delay(n) for n in range(5)]
        [0.5, 1.0, 2.0, 4.0, 4.0]

    Attributes:
        initial: Delay of the first restart, in seconds.
        multiplier: Growth factor per consecutive restart, at least 1.
        maximum: Cap of the delay before jitter, in seconds.
        jitter: Fraction of random spread, from 0 to 1.
        reset_after: Seconds of RUNNING after which the count resets.
        rng: The generator of the jitter; seed one for exact tests. ``None``
            uses the `random` module's shared generator.
    """

    initial: float
    multiplier: float = 2.0
    maximum: float = 60.0
    jitter: float = 0.0
    reset_after: float = 60.0
    rng: random.Random | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        set_field = object.__setattr__
        set_field(self, "initial", _util.seconds("Backoff.initial", self.initial))
        set_field(self, "maximum", _util.seconds("Backoff.maximum", self.maximum))
        set_field(
            self, "reset_after", _util.seconds("Backoff.reset_after", self.reset_after)
        )
        multiplier = _util.number("Backoff.multiplier", self.multiplier)
        if not 1.0 <= multiplier < math.inf:
            raise ValueError(
                f"Backoff.multiplier must be a finite number >= 1, "
                f"got {self.multiplier!r}"
            )
        set_field(self, "multiplier", multiplier)
        jitter = _util.number("Backoff.jitter", self.jitter)
        if not 0.0 <= jitter <= 1.0:
            raise ValueError(
                f"Backoff.jitter must be between 0 and 1, got {self.jitter!r}"
            )
        set_field(self, "jitter", jitter)
        if self.maximum < self.initial:
            raise ValueError(
                f"Backoff.maximum must be >= initial ({self.initial!r}), "
                f"got {self.maximum!r}"
            )
        if self.rng is not None and not isinstance(self.rng, random.Random):
            raise TypeError(f"Backoff.rng must be a random.Random, got {self.rng!r}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before the ``attempt``-th consecutive restart (from 0)."""
        try:
            base = min(self.initial * self.multiplier**attempt, self.maximum)
        except OverflowError:
            base = self.maximum
        if not self.jitter:
            return base
        rng = self.rng if self.rng is not None else random
        return base * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)
