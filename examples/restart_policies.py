"""Restart policies: which ends of a run lead to a restart.

Four services, one per policy (and DoNotRestart), run for 5.5 seconds on a
MockClock; each prints its status changes with their times.
"""

import trio
import trio.testing

from trio_supervisor import (
    Config,
    DoNotRestart,
    Restart,
    StatusUpdate,
    Supervisor,
    new_service,
)


async def return_after(seconds: float) -> None:
    await trio.sleep(seconds)


async def fail_after(seconds: float) -> None:
    await trio.sleep(seconds)
    raise RuntimeError("failed")


async def main() -> None:
    migrations = 0

    async def migrate() -> None:
        nonlocal migrations
        migrations += 1
        await trio.sleep(1)
        if migrations == 1:
            raise RuntimeError("database not up yet")

    async def clean_up() -> None:
        await trio.sleep(2.5)
        raise DoNotRestart("nothing left to clean")

    timelines: dict[str, list[StatusUpdate]] = {}

    def record(snapshot: list[StatusUpdate]) -> None:
        for update in snapshot:
            timeline = timelines.setdefault(update.service_name, [])
            if not timeline or timeline[-1] is not update:
                timeline.append(update)

    config = Config(
        services=[
            new_service("web", return_after, 2),  # PERMANENT, the default
            new_service("migrate", migrate, restart=Restart.TRANSIENT),
            new_service("report", fail_after, 1.5, restart=Restart.TEMPORARY),
            new_service("clean-up", clean_up),
        ],
        status_update_listeners=[record],
        restart_interval=1,
    )
    with trio.move_on_after(5.5):
        await Supervisor(config).run()

    for name, timeline in timelines.items():
        print(f"{name + ':':<9}", ", ".join(f"{u.status} {u.time:g}" for u in timeline))
    clean_up_end = timelines["clean-up"][-1]
    print("clean-up ended with", repr(clean_up_end.err))


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
