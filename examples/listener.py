"""A listener counts a crashing service's stops and cancels the run after three.

A port of the seed's third example; prints ``service stopped 3 times``.
"""

from datetime import timedelta

import trio

from trio_supervisor import Config, StatusUpdate, Supervisor, new_service


async def main() -> None:
    stops = 0

    async def crash() -> None:
        raise RuntimeError("crash")

    with trio.CancelScope() as run:

        def count_stops(snapshot: list[StatusUpdate]) -> None:
            nonlocal stops
            if snapshot[0].status.is_alive or run.cancel_called:
                return
            stops += 1
            if stops == 3:
                run.cancel()

        config = Config(
            services=[new_service("crasher", crash)],
            status_update_listeners=[count_stops],
            restart_interval=timedelta(milliseconds=10),
        )
        await Supervisor(config).run()
    print("service stopped", stops, "times")


if __name__ == "__main__":
    trio.run(main)
