"""Strategies: which services a restart takes along.

Three services started in order (db, cache, api); the cache crashes 2 s in.
ONE_FOR_ONE restarts the cache alone, REST_FOR_ONE the cache and the api
started after it, ONE_FOR_ALL all three, in id order, 1 s after the crash.
"""

import trio
import trio.testing

from trio_supervisor import (
    Config,
    Restart,
    StatusUpdate,
    Strategy,
    Supervisor,
    new_service,
)


async def serve() -> None:
    await trio.sleep_forever()


async def crash_after(seconds: float) -> None:
    await trio.sleep(seconds)
    raise RuntimeError("cache evicted itself")


async def demo(strategy: Strategy) -> None:
    timelines: dict[str, list[StatusUpdate]] = {}

    def record(snapshot: list[StatusUpdate]) -> None:
        for update in snapshot:
            timeline = timelines.setdefault(update.service_name, [])
            if not timeline or timeline[-1] is not update:
                timeline.append(update)

    config = Config(
        services=[
            new_service("db", serve),
            new_service("cache", crash_after, 2, restart=Restart.TRANSIENT),
            new_service("api", serve),
        ],
        status_update_listeners=[record],
        restart_interval=1,
        strategy=strategy,
    )
    start = trio.current_time()
    with trio.move_on_after(3.5):
        await Supervisor(config).run()

    # What happened between the start and the final shutdown, per service.
    print(f"{strategy.name}:")
    for name, timeline in timelines.items():
        changes = [u for u in timeline if start < u.time < start + 3.5]
        shown = ", ".join(f"{u.status} {u.time - start:g}" for u in changes)
        print(f"  {name + ':':<6} {shown or '(untouched)'}")


async def main() -> None:
    for strategy in Strategy:
        await demo(strategy)


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
