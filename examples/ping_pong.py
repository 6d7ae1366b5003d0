"""Two services play ping-pong over a channel for two rounds, then cancel the run.

A port of the seed's first example; prints ping, pong, ping, pong.
"""

from datetime import timedelta

import trio

from trio_supervisor import Config, Supervisor, new_service

ROUNDS_TO_PLAY = 2


async def main() -> None:
    send_ball, receive_ball = trio.open_memory_channel[int](0)

    with trio.CancelScope() as game:

        async def ping() -> None:
            rounds_left = ROUNDS_TO_PLAY
            while True:
                await send_ball.send(rounds_left)
                print("ping")
                rounds_left = await receive_ball.receive()
                if rounds_left == 0:
                    game.cancel()
                    return

        async def pong() -> None:
            while True:
                rounds_left = await receive_ball.receive()
                if rounds_left == 0:
                    return
                await send_ball.send(rounds_left - 1)
                print("pong")

        config = Config(
            services=[new_service("ping", ping), new_service("pong", pong)],
            restart_interval=timedelta(milliseconds=10),
        )
        await Supervisor(config).run()


if __name__ == "__main__":
    trio.run(main)
