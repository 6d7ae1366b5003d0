"""Watchdog: a service that stops calling ``heartbeat()`` is cancelled.

The worker has a 2 s watchdog and heartbeats after each 1 s job, but each
run hangs after its third job: 2 s later the supervisor cancels it and
reports it ERROR with WatchdogTimeout, then restarts it by its policy.
"""

import trio
import trio.testing

from trio_supervisor import Config, StatusUpdate, Supervisor, heartbeat, new_service


async def work() -> None:
    for _ in range(3):
        await trio.sleep(1)  # one job
        heartbeat()  # the watchdog now expires 2 s from here
    await trio.sleep_forever()  # stuck: no more heartbeats


async def main() -> None:
    updates: list[StatusUpdate] = []

    def record(snapshot: list[StatusUpdate]) -> None:
        if not updates or updates[-1] is not snapshot[0]:
            updates.append(snapshot[0])

    config = Config(
        services=[new_service("worker", work, watchdog=2)],
        status_update_listeners=[record],
        restart_interval=1,
    )
    with trio.move_on_after(11.5):
        await Supervisor(config).run()

    for u in updates:  # at 11.5 s it waits for its restart: no final Stopped
        error = f"  {u.err!r}" if u.err else ""
        print(f"{u.time:>2g} s  {u.status}{error}")


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
