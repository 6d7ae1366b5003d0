"""A supervision tree: a supervisor supervising a supervisor.

The ``workers`` supervisor allows one restart within 10 s. Its ``indexer``
crashes every second, so at 2 s ``workers`` gives up: its ``run()`` raises
RestartIntensityExceeded, which its parent sees as the ERROR of its
``workers`` service, and restarts by its own policy, 1 s later.
"""

import trio
import trio.testing

from trio_supervisor import Config, StatusUpdate, Supervisor, new_service


async def crash_after_a_second() -> None:
    await trio.sleep(1)
    raise ValueError("corrupt index")


async def serve() -> None:
    await trio.sleep_forever()


async def main() -> None:
    workers = Supervisor(
        Config(
            name="workers",
            services=[new_service("indexer", crash_after_a_second)],
            max_restarts=1,
            max_seconds=10,
        )
    )

    timelines: dict[str, list[StatusUpdate]] = {}

    def record(snapshot: list[StatusUpdate]) -> None:
        for update in snapshot:
            timeline = timelines.setdefault(update.service_name, [])
            if not timeline or timeline[-1] is not update:
                timeline.append(update)

    root = Supervisor(
        Config(
            services=[workers, new_service("api", serve)],
            status_update_listeners=[record],
            restart_interval=1,
        )
    )
    with trio.move_on_after(3.5):
        await root.run()

    for name, timeline in timelines.items():
        print(f"{name + ':':<8}", ", ".join(f"{u.status} {u.time:g}" for u in timeline))
    print("workers failed with:", repr(timelines["workers"][2].err))


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
