"""Graceful stop: a stop request first, cancellation after ``shutdown_timeout``.

At 5.5 s the application calls ``supervisor.stop()``. The consumer finishes
the item it is handling and returns at 6 s; the exporter ignores the request
and is cancelled when its 3 s shutdown timeout runs out, at 8.5 s. Both end
STOPPED, and ``run()`` returns once both have ended.
"""

import trio
import trio.testing

from trio_supervisor import (
    Config,
    Supervisor,
    new_service,
    stop_requested,
)


async def main() -> None:
    log: list[str] = []

    async def consume() -> None:
        stopping = stop_requested()  # a trio.Event, fresh for each run
        handled = 0
        while not stopping.is_set():
            await trio.sleep(1)  # handle one item; a stop request waits for it
            handled += 1
        log.append(f"{trio.current_time():g} s: consumer done after {handled} items")

    async def export() -> None:
        try:
            await trio.sleep_forever()  # never looks at stop_requested()
        except trio.Cancelled:
            log.append(f"{trio.current_time():g} s: exporter cancelled")
            raise

    supervisor = Supervisor(
        Config(
            services=[
                new_service("consumer", consume, shutdown_timeout=2),
                new_service("exporter", export, shutdown_timeout=3),
            ]
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(5.5)
        log.append(f"{trio.current_time():g} s: supervisor.stop()")
        supervisor.stop()  # returns at once; run() ends after the services
    log.append(f"{trio.current_time():g} s: run() returned")

    print(*log, sep="\n")
    for update in supervisor.statuses():
        print(f"{update.service_name}: {update.status} at {update.time:g} s")


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
