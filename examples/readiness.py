"""Ordered start: each ``ready=True`` service holds the next back until it
calls ``task_status.started()``; a missed ``start_timeout`` is a failure.

The database takes 2 s to open, so the api starts at 2 s. The search index
is too slow on its first run and fails its 1 s start timeout at 3 s; its
restart, 1 s later, gets ready in 0.5 s. ``await nursery.start(supervisor.run)``
returns once every service has reported RUNNING or ended its first run: at 3 s.
"""

import trio
import trio.testing

from trio_supervisor import (
    Config,
    Restart,
    Status,
    StatusUpdate,
    Supervisor,
    new_service,
)


async def database(*, task_status: trio.TaskStatus[None]) -> None:
    await trio.sleep(2)  # open the connection pool
    task_status.started()  # RUNNING from now; the next service starts now
    await trio.sleep_forever()


async def api() -> None:
    await trio.sleep_forever()


async def main() -> None:
    search_runs = 0

    async def search_index(*, task_status: trio.TaskStatus[None]) -> None:
        nonlocal search_runs
        search_runs += 1
        # The first run is too slow: its start timeout cancels it at 1 s.
        await trio.sleep(10 if search_runs == 1 else 0.5)
        task_status.started()
        await trio.sleep_forever()

    changes: list[StatusUpdate] = []
    seen: dict[int, StatusUpdate] = {}

    def record(snapshot: list[StatusUpdate]) -> None:
        for update in snapshot:
            if seen.get(update.service_id) is not update:
                seen[update.service_id] = update
                changes.append(update)

    supervisor = Supervisor(
        Config(
            services=[
                new_service("db", database, ready=True),
                new_service("api", api),
                new_service(
                    "search",
                    search_index,
                    ready=True,
                    start_timeout=1,
                    restart=Restart.TRANSIENT,
                ),
            ],
            status_update_listeners=[record],
            restart_interval=1,
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        print(f"nursery.start() returned at {trio.current_time():g} s")
        await trio.sleep(2)  # long enough to see the search index's restart
        supervisor.stop()

    for u in changes:
        if u.status is not Status.STOPPED:  # leave the final shutdown out
            error = f"  {u.err}" if u.err else ""
            print(f"{u.time:>3g} s  {u.service_name:<6} {u.status}{error}")


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
