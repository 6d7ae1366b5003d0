"""Getting started: a flaky service and a steady one under one supervisor.

The supervisor restarts the fetcher one second after each failure; a listener
records every status change, printed at the end with its time on the run's
clock. The run uses Trio's MockClock, so the seven seconds take no time and
the printed times are exact.
"""

import trio
import trio.testing

from trio_supervisor import Config, StatusUpdate, Supervisor, new_service


async def fetch(url: str) -> None:
    await trio.sleep(2)  # pretend to fetch url, then lose the connection
    raise ConnectionError(f"{url}: connection reset")


async def serve() -> None:
    await trio.sleep_forever()  # answer requests until cancelled


async def main() -> None:
    changes: list[StatusUpdate] = []
    seen: dict[int, StatusUpdate] = {}

    def record(snapshot: list[StatusUpdate]) -> None:
        for update in snapshot:  # the whole table; keep what changed
            if seen.get(update.service_id) is not update:
                seen[update.service_id] = update
                changes.append(update)

    config = Config(
        services=[
            new_service("fetcher", fetch, "https://example.com"),
            new_service("server", serve),
        ],
        status_update_listeners=[record],
        restart_interval=1.0,
    )
    with trio.move_on_after(7):  # cancelling run() stops every service
        await Supervisor(config).run()

    # Services that change at the same instant run in no set order: sort by
    # (time, id) so the output is the same on every run.
    for u in sorted(changes, key=lambda u: (u.time, u.service_id)):
        error = f"  {u.err!r}" if u.err else ""
        print(f"{u.time:4.1f}s  {u.service_name:<8} {u.status}{error}")


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
