"""Health endpoints: ``/livez``, ``/readyz`` and ``/status`` over real HTTP.

The cache fails on its first run; the supervisor restarts it 5 s later. The
script asks the endpoints before and after that restart, with a plain TCP
client. The MockClock here does not move by itself (no autojump): the script
moves it with ``clock.jump(5)``, so the times in ``/status`` are exact.
"""

import json

import trio
import trio.testing

from trio_supervisor import Config, Supervisor, new_service
from trio_supervisor.health import serve_health


async def get(port: int, path: str) -> None:
    """Print the status line and the body of ``GET path``."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        await stream.send_all(request.encode())
        response = b""
        while data := await stream.receive_some():
            response += data
    head, _, body = response.decode().partition("\r\n\r\n")
    print(f"GET {path} -> {head.splitlines()[0]}")
    if path == "/status":  # a JSON list: one service a line
        lines = [json.dumps(entry) for entry in json.loads(body)]
    else:
        lines = body.splitlines()
    for line in lines:
        print("   ", line)


async def main(clock: trio.testing.MockClock) -> None:
    cache_runs = 0

    async def cache() -> None:
        nonlocal cache_runs
        cache_runs += 1
        if cache_runs == 1:
            raise ConnectionRefusedError("cache not reachable")
        await trio.sleep_forever()

    async def database() -> None:
        await trio.sleep_forever()

    supervisor = Supervisor(
        Config(
            name="shop",
            services=[new_service("db", database), new_service("cache", cache)],
            restart_interval=5,
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        async with serve_health(supervisor) as server:  # 127.0.0.1, a free port
            await trio.testing.wait_all_tasks_blocked()  # the cache has failed
            await get(server.port, "/livez")
            await get(server.port, "/readyz")
            await get(server.port, "/status")
            clock.jump(5)
            await trio.testing.wait_all_tasks_blocked()  # the cache restarted
            await get(server.port, "/readyz")
            await get(server.port, "/status")
        supervisor.stop()


if __name__ == "__main__":
    clock = trio.testing.MockClock()
    trio.run(main, clock, clock=clock)
