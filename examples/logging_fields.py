"""Logging: the supervisor's records, and a service's own, carry its name and id.

The supervisor logs each failure at ERROR (with the traceback, left out of
this output), each restart at INFO and each status change at DEBUG, to the
``trio_supervisor`` logger unless ``Config.logger`` says otherwise. Inside a
service, ``current_logger()`` is that logger bound to the service.
"""

import logging
import sys

import trio
import trio.testing

from trio_supervisor import Config, Supervisor, current_logger, new_service


class WithoutTraceback(logging.Formatter):
    def formatException(self, ei: object) -> str:
        return ""


async def poll(url: str) -> None:
    log = current_logger()
    log.info("polling %s", url)
    await trio.sleep(1)
    raise TimeoutError(f"{url} did not answer")


async def main() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        WithoutTraceback(
            "%(levelname)-5s %(name)s [%(service_name)s #%(service_id)s] %(message)s"
        )
    )
    logger = logging.getLogger("trio_supervisor")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)

    config = Config(
        services=[new_service("poller", poll, "https://example.com")],
        restart_interval=5,
    )
    with trio.move_on_after(2):
        await Supervisor(config).run()


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
