"""systemd: what ``systemd.notify`` sends over ``NOTIFY_SOCKET``.

The script plays systemd: it binds a Unix datagram socket, names it in
``NOTIFY_SOCKET`` with a 4 s ``WATCHDOG_USEC``, and prints each message with
its time on the run's clock. A job fails at 2.5 s; the run is cancelled at
6.5 s.
"""

import os
import socket
import tempfile

import trio
import trio.testing

from trio_supervisor import Config, Restart, Supervisor, new_service, systemd


async def serve() -> None:
    await trio.sleep_forever()


async def job() -> None:
    await trio.sleep(2.5)
    raise RuntimeError("job failed")


async def main() -> None:
    received: list[str] = []

    async def read(sock: trio.socket.SocketType) -> None:
        while True:
            message = (await sock.recv(4096)).decode()
            received.append(f"{trio.current_time():>3g} s  {message}")

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "notify")
        os.environ["NOTIFY_SOCKET"] = path
        os.environ["WATCHDOG_USEC"] = "4000000"  # WATCHDOG=1 every 2 s
        with trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            await sock.bind(path)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read, sock)
                supervisor = Supervisor(
                    Config(
                        services=[
                            new_service("web", serve),
                            new_service("job", job, restart=Restart.TEMPORARY),
                        ]
                    )
                )
                async with systemd.notify(supervisor):
                    with trio.move_on_after(6.5):
                        await supervisor.run()
                await trio.testing.wait_all_tasks_blocked()  # read every message
                nursery.cancel_scope.cancel()
    print(*received, sep="\n")


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
