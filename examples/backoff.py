"""Exponential backoff: restart delays that grow, and reset after a healthy run.

A service crashes at once three times, then stays up for 12 seconds before it
crashes again: the delays double (1, 2, 4 s), then start over at 1 s because
the last run was RUNNING for at least ``reset_after`` seconds.
"""

import random

import trio
import trio.testing

from trio_supervisor import (
    Backoff,
    Config,
    Status,
    StatusUpdate,
    Supervisor,
    new_service,
)

RUN_TIMES = [0, 0, 0, 12, 0]
"""How long each successive run lasts before it crashes."""


async def main() -> None:
    runs = iter(RUN_TIMES)

    async def crash() -> None:
        await trio.sleep(next(runs, 0))
        raise ConnectionError("lost the broker")

    updates: list[StatusUpdate] = []

    def record(snapshot: list[StatusUpdate]) -> None:
        if not updates or updates[-1] is not snapshot[0]:
            updates.append(snapshot[0])

    config = Config(
        services=[new_service("consumer", crash)],
        status_update_listeners=[record],
        backoff=Backoff(1, multiplier=2, maximum=8, reset_after=10),
    )
    with trio.move_on_after(21):
        await Supervisor(config).run()

    ended = None
    for update in updates:
        if update.status is Status.ERROR:
            ended = update.time
        elif update.status is Status.IDLE and ended is not None:
            waited = update.time - ended
            print(f"crashed at {ended:g} s, restarted at {update.time:g} s", end="")
            print(f" (waited {waited:g} s)")

    # Jitter spreads the delays; a seeded generator makes them repeatable.
    jittery = Backoff(1, maximum=8, jitter=0.2, rng=random.Random(42))
    print("with jitter:", [round(jittery.delay(n), 3) for n in range(5)])


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
