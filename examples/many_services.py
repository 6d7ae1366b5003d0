"""Many alike services: a pool of connection handlers stopped only all together.

1,000 handlers run under a supervisor with ``individual_stop=False``, itself a
service of the application's supervisor beside an API. Such a pool cannot stop
one handler alone, so ``remove()`` of a running one is refused. At shutdown
every handler gets its stop request at once; each finishes its last message
within the pool's shared 2 s timeout, except one stuck handler, cancelled then.
"""

from collections import Counter

import trio
import trio.testing

from trio_supervisor import (
    Config,
    Supervisor,
    new_service,
    open_supervisor,
    stop_requested,
)

CONNECTIONS = 1_000
STUCK = 999


async def serve_api() -> None:
    await trio.sleep_forever()


async def handle(connection: int) -> None:
    await stop_requested().wait()
    await trio.sleep(60 if connection == STUCK else 0.5)  # send the last message


def summary(pool: Supervisor) -> str:
    seen = Counter(f"{u.status} at {u.time:g} s" for u in pool.statuses())
    return ", ".join(f"{count} {state}" for state, count in sorted(seen.items()))


async def main() -> None:
    pool = Supervisor(
        Config(
            services=[new_service(f"conn-{n}", handle, n) for n in range(CONNECTIONS)],
            shutdown_timeout=2,
            individual_stop=False,
            name="connections",
        )
    )
    async with open_supervisor(Config(services=[new_service("api", serve_api), pool])):
        await trio.sleep(5)
        print(f"at {trio.current_time():g} s: {summary(pool)}")
        try:
            await pool.remove(3)
        except RuntimeError as error:
            print(f"remove(3): {error}")
    print(f"stopped at {trio.current_time():g} s: {summary(pool)}")


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
