"""Restart intensity: at most ``max_restarts`` restarts within ``max_seconds``.

A service that crashes every second may be restarted twice within ten
seconds; its third crash would need a third restart, so the supervisor stops
every service and ``run()`` raises RestartIntensityExceeded.
"""

import trio
import trio.testing

from trio_supervisor import (
    Config,
    RestartIntensityExceeded,
    Supervisor,
    new_service,
)


async def crash_after_a_second() -> None:
    await trio.sleep(1)
    raise OSError("disk full")


async def serve() -> None:
    await trio.sleep_forever()


async def main() -> None:
    supervisor = Supervisor(
        Config(
            services=[
                new_service("writer", crash_after_a_second),
                new_service("api", serve),
            ],
            max_restarts=2,
            max_seconds=10,
        )
    )
    try:
        await supervisor.run()
    except RestartIntensityExceeded as exc:
        print(f"run() raised at {trio.current_time():g} s: {exc}")
        for update in exc.failures:
            print(f"  {update.service_name} {update.status} at {update.time:g} s")
    for update in supervisor.statuses():
        print(f"{update.service_name}: {update.status} at {update.time:g} s")


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
