"""A service fails three times, then cancels the run.

A port of the seed's second example; prints ``service restarted 3 times``.
The supervisor logs each failure and restart to stderr.
"""

import logging
from datetime import timedelta

import trio

from trio_supervisor import Config, Supervisor, new_service


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    starts = 0

    with trio.CancelScope() as run:

        async def example() -> None:
            nonlocal starts
            if starts == 3:
                run.cancel()
                return
            starts += 1
            raise RuntimeError("oops")

        config = Config(
            services=[new_service("example", example)],
            restart_interval=timedelta(milliseconds=10),
            logger=logging.getLogger("example"),
        )
        await Supervisor(config).run()
    print("service restarted", starts, "times")


if __name__ == "__main__":
    trio.run(main)
