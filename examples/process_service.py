"""Subprocesses: supervise external programs like any other service.

The first program prints a line, complains on stderr and exits with code 3:
its service ends ERROR with ProcessFailed. The second traps SIGTERM: when the
supervisor stops, it gets SIGTERM, cleans up and exits, and its service ends
STOPPED. Each line a program writes is logged through its service's logger;
this script prints the stdout ones.
"""

import logging
import sys

import trio

from trio_supervisor import (
    Config,
    ProcessFailed,
    Restart,
    StatusUpdate,
    open_supervisor,
    process_service,
)

FAILING = """
import sys
print("loading the model")
print("model file is corrupt", file=sys.stderr)
sys.exit(3)
"""

TRAPPING = """
import signal, sys, time
def bye(signum, frame):
    print("SIGTERM: flushing and exiting", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
print("ready", flush=True)
time.sleep(30)
"""


class Stdout(logging.Handler):
    """Prints the stdout lines of programs; sets ``ready`` on a "ready" line."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = trio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "stream", None) == "stdout":
            print(f"[{getattr(record, 'service_name', '?')}] {record.getMessage()}")
            if record.getMessage() == "stdout: ready":
                self.ready.set()


async def main() -> None:
    handler = Stdout()
    logger = logging.getLogger("trio_supervisor")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    ended = trio.Event()

    def watch(snapshot: list[StatusUpdate]) -> None:
        if not snapshot[0].status.is_alive:
            ended.set()

    failing = process_service(
        "loader", [sys.executable, "-c", FAILING], restart=Restart.TEMPORARY
    )
    async with open_supervisor(
        Config(services=[failing], status_update_listeners=[watch])
    ) as supervisor:
        await ended.wait()
    (update,) = supervisor.statuses()
    print(f"loader: {update.status}")
    assert isinstance(update.err, ProcessFailed)
    print(f"  returncode={update.err.returncode} stderr_tail={update.err.stderr_tail}")

    trapping = process_service(
        "sidecar", [sys.executable, "-c", TRAPPING], shutdown_timeout=5
    )
    async with open_supervisor(Config(services=[trapping])) as supervisor:
        await handler.ready.wait()
    # Leaving the block stopped the supervisor: SIGTERM, then the exit.
    print(f"sidecar: {supervisor.statuses()[0].status}")


if __name__ == "__main__":
    trio.run(main)
