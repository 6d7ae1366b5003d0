"""Dynamic services: add and remove services while the supervisor runs.

A tenant's service is added at 1 s and removed at 3 s; it finishes its work
within its 0.5 s shutdown timeout, then leaves the snapshots. The next tenant
gets a new id: ids are never reused.
"""

import trio
import trio.testing

from trio_supervisor import (
    Config,
    StatusUpdate,
    Supervisor,
    new_service,
    stop_requested,
)


async def serve() -> None:
    await trio.sleep_forever()


async def serve_tenant(tenant: int) -> None:
    await stop_requested().wait()
    await trio.sleep(0.25)  # flush the tenant's writes


async def main() -> None:
    snapshots: list[tuple[float, list[StatusUpdate]]] = []

    def record(snapshot: list[StatusUpdate]) -> None:
        snapshots.append((trio.current_time(), snapshot))

    supervisor = Supervisor(
        Config(services=[new_service("api", serve)], status_update_listeners=[record])
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(1)
        tenant_42 = supervisor.add(
            new_service("tenant-42", serve_tenant, 42, shutdown_timeout=0.5)
        )
        await trio.sleep(2)
        await supervisor.remove(tenant_42)  # returns once the service has ended
        tenant_7 = supervisor.add(new_service("tenant-7", serve_tenant, 7))
        await trio.sleep(1)
        stopped_at = trio.current_time()
        supervisor.stop()

    for time, snapshot in snapshots:
        if time < stopped_at:  # leave the final shutdown out
            table = ", ".join(
                f"{u.service_id}:{u.service_name} {u.status}" for u in snapshot
            )
            print(f"{time:4g} s  [{table}]")
    print(f"tenant-42 had id {tenant_42}, tenant-7 has id {tenant_7}")


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
