"""systemd.notify: the messages a real Unix datagram socket receives, and when."""

from __future__ import annotations

import logging
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from trio_supervisor import (
    Config,
    Phase,
    Restart,
    Status,
    StatusUpdate,
    Supervisor,
    new_service,
    systemd,
)

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "AF_UNIX"), reason="sd_notify uses Unix sockets"
)

Message = tuple[float, str]
"""A message as received: (time on the run's clock, text)."""


@dataclass
class Systemd:
    """The receiving end of NOTIFY_SOCKET, as systemd holds it."""

    sock: trio.socket.SocketType
    received: list[Message] = field(default_factory=list)

    async def read(self) -> None:
        while True:
            data = await self.sock.recv(4096)
            self.received.append((trio.current_time(), data.decode()))

    async def messages(self) -> list[Message]:
        """Every message sent so far, once the reader has taken them all."""
        await trio.testing.wait_all_tasks_blocked()
        return self.received


async def listen(
    address: str, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch, env: str
) -> Systemd:
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    await sock.bind(address)
    monkeypatch.setenv("NOTIFY_SOCKET", env)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    receiver = Systemd(sock)
    nursery.start_soon(receiver.read)
    return receiver


@pytest.fixture
async def sd(
    tmp_path: Path, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Systemd]:
    """A notify socket bound to a path in tmp_path, named in NOTIFY_SOCKET."""
    path = str(tmp_path / "notify")
    receiver = await listen(path, nursery, monkeypatch, path)
    with receiver.sock:
        yield receiver


async def forever() -> None:
    await trio.sleep_forever()


async def fail_after_seconds(seconds: float) -> None:
    await trio.sleep(seconds)
    raise ValueError("boom")


async def stop_after_seconds(seconds: float) -> None:
    await trio.sleep(seconds)


def two_services() -> Config:
    return Config(
        services=[
            new_service("web", forever),
            new_service("job", fail_after_seconds, 2.5, restart=Restart.TEMPORARY),
        ]
    )


# --- as a block ------------------------------------------------------------------


async def test_block_sends_ready_status_changes_and_stopping(
    sd: Systemd, autojump_clock: trio.testing.MockClock
) -> None:
    """READY at RUNNING, a STATUS a second after each change, STOPPING at shutdown."""
    supervisor = Supervisor(two_services())
    async with trio.open_nursery() as nursery, systemd.notify(supervisor):
        await nursery.start(supervisor.run)
        await trio.sleep(5)
        supervisor.stop()
        await supervisor.wait_phase(Phase.STOPPED)
        await trio.sleep(2)
    assert await sd.messages() == [
        (0.0, "READY=1"),
        (1.0, "STATUS=2 running"),
        (3.5, "STATUS=1 running, 1 error"),
        (5.0, "STOPPING=1"),
        (6.0, "STATUS=1 stopped, 1 error"),
    ]


async def test_block_around_run_as_documented(
    sd: Systemd, autojump_clock: trio.testing.MockClock
) -> None:
    """``async with notify(supervisor): await supervisor.run()`` reports the run."""
    supervisor = Supervisor(two_services())
    with trio.move_on_after(2):
        async with systemd.notify(supervisor):
            await supervisor.run()
    assert await sd.messages() == [
        (0.0, "READY=1"),
        (1.0, "STATUS=2 running"),
        (2.0, "STOPPING=1"),
    ]


async def test_leaving_the_block_sends_stopping_once(
    sd: Systemd, autojump_clock: trio.testing.MockClock
) -> None:
    """Leaving the block before shutdown sends STOPPING=1, and only then."""
    supervisor = Supervisor(two_services())
    async with trio.open_nursery() as nursery:
        async with systemd.notify(supervisor):
            await nursery.start(supervisor.run)
            await trio.sleep(0.5)
        await trio.sleep(1)
        supervisor.stop()
    assert await sd.messages() == [(0.0, "READY=1"), (0.5, "STOPPING=1")]


async def test_an_exception_in_the_block_sends_stopping_and_propagates_bare(
    sd: Systemd, autojump_clock: trio.testing.MockClock
) -> None:
    """An exception leaving the block is raised as is, after STOPPING=1."""
    supervisor = Supervisor(two_services())

    async def fail_in_block() -> None:
        async with systemd.notify(supervisor):
            await trio.sleep(0.25)
            raise KeyError("oops")

    with pytest.raises(KeyError, match=r"^'oops'$"):
        await fail_in_block()
    assert await sd.messages() == [(0.25, "STOPPING=1")]


async def test_a_supervisor_stopped_during_startup_is_never_ready(
    sd: Systemd, autojump_clock: trio.testing.MockClock
) -> None:
    """A supervisor that skips RUNNING gets STOPPING=1 without READY=1."""

    async def slow_start(*, task_status: trio.TaskStatus[None]) -> None:
        await trio.sleep(10)
        task_status.started()

    supervisor = Supervisor(
        Config(services=[new_service("slow", slow_start, ready=True)])
    )
    async with trio.open_nursery() as nursery, systemd.notify(supervisor):
        nursery.start_soon(supervisor.run)
        await trio.sleep(2)
        supervisor.stop()
        await supervisor.wait_phase(Phase.STOPPED)
    assert await sd.messages() == [
        (1.0, "STATUS=1 idle"),
        (2.0, "STOPPING=1"),
    ]


async def test_the_block_can_be_entered_once_at_a_time(
    sd: Systemd, autojump_clock: trio.testing.MockClock
) -> None:
    """Entering a notifier that is in use raises RuntimeError."""
    supervisor = Supervisor(two_services())
    notifier = systemd.notify(supervisor)
    async with notifier:
        with pytest.raises(RuntimeError, match=r"^<SystemdNotifier of .*> is in use"):
            await notifier.__aenter__()
    async with notifier:
        pass
    assert [text for _, text in await sd.messages()] == ["STOPPING=1"] * 2


# --- as a service ----------------------------------------------------------------


async def test_service_reports_its_supervisor_and_counts_itself(
    sd: Systemd, autojump_clock: trio.testing.MockClock
) -> None:
    """Added to the supervisor it reports, it sends READY, STATUS and STOPPING."""
    supervisor = Supervisor(two_services())
    notifier_id = supervisor.add(systemd.notify(supervisor))
    with trio.move_on_after(4):
        await supervisor.run()
    assert await sd.messages() == [
        (0.0, "READY=1"),
        (1.0, "STATUS=3 running"),
        (3.5, "STATUS=2 running, 1 error"),
        (4.0, "STOPPING=1"),
    ]
    assert supervisor.statuses()[notifier_id].service_name == "systemd-notify"
    assert supervisor.statuses()[notifier_id].status is Status.STOPPED


async def test_without_notify_socket_nothing_is_sent(
    sd: Systemd,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without NOTIFY_SOCKET the block and the service do nothing and stay up."""
    monkeypatch.delenv("NOTIFY_SOCKET")
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    supervisor = Supervisor(two_services())
    supervisor.add(systemd.notify(supervisor))
    async with trio.open_nursery() as nursery, systemd.notify(supervisor):
        await nursery.start(supervisor.run)
        await trio.sleep(3)
        assert supervisor.statuses()[2].status is Status.RUNNING
        supervisor.stop()
    assert await sd.messages() == []


# --- the watchdog ----------------------------------------------------------------


async def test_watchdog_pings_every_half_of_watchdog_usec(
    sd: Systemd,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WATCHDOG=1 goes out every WATCHDOG_USEC / 2 from the start."""
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    supervisor = Supervisor(Config(services=[new_service("web", forever)]))
    supervisor.add(systemd.notify(supervisor, status_interval=0.25))
    with trio.move_on_after(4.75):
        await supervisor.run()
    assert await sd.messages() == [
        (0.0, "READY=1"),
        (0.25, "STATUS=2 running"),
        (1.5, "WATCHDOG=1"),
        (3.0, "WATCHDOG=1"),
        (4.5, "WATCHDOG=1"),
        (4.75, "STOPPING=1"),
    ]


async def test_watchdog_pings_only_while_the_supervisor_runs(
    sd: Systemd,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No WATCHDOG=1 before run() or after it ended, so systemd steps in."""
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    supervisor = Supervisor(Config(services=[new_service("web", forever)]))
    async with trio.open_nursery() as nursery, systemd.notify(supervisor):
        await trio.sleep(2.5)
        await nursery.start(supervisor.run)
        await trio.sleep(2)
        supervisor.stop()
        await trio.sleep(3)
    assert await sd.messages() == [
        (2.5, "READY=1"),
        (3.0, "WATCHDOG=1"),
        (3.5, "STATUS=1 running"),
        (4.0, "WATCHDOG=1"),
        (4.5, "STOPPING=1"),
        (5.5, "STATUS=1 stopped"),
    ]


async def test_watchdog_pid_of_another_process_turns_pings_off(
    sd: Systemd,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WATCHDOG_PID naming another process means the watchdog is not ours."""
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    supervisor = Supervisor(Config(services=[new_service("web", forever)]))
    supervisor.add(systemd.notify(supervisor))
    with trio.move_on_after(3):
        await supervisor.run()
    assert [text for _, text in await sd.messages()] == [
        "READY=1",
        "STATUS=2 running",
        "STOPPING=1",
    ]


@pytest.mark.parametrize(
    ("usec", "pid", "warning"),
    [
        ("abc", "", "WATCHDOG_USEC must be a positive integer, got 'abc'"),
        ("0", "", "WATCHDOG_USEC must be a positive integer, got '0'"),
        ("1000000", "me", "WATCHDOG_PID must be a positive integer, got 'me'"),
    ],
    ids=["usec-not-a-number", "usec-zero", "pid-not-a-number"],
)
async def test_a_malformed_watchdog_setting_is_logged_and_skipped(
    sd: Systemd,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    usec: str,
    pid: str,
    warning: str,
) -> None:
    """Bad watchdog variables turn the pings off with a WARNING, nothing else."""
    monkeypatch.setenv("WATCHDOG_USEC", usec)
    monkeypatch.setenv("WATCHDOG_PID", pid)
    supervisor = Supervisor(Config(services=[new_service("web", forever)]))
    supervisor.add(systemd.notify(supervisor))
    with trio.move_on_after(3):
        await supervisor.run()
    assert [text for _, text in await sd.messages()] == [
        "READY=1",
        "STATUS=2 running",
        "STOPPING=1",
    ]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"no watchdog keep-alives: {warning}"
    ]


# --- status lines ----------------------------------------------------------------


async def test_status_changes_within_the_interval_make_one_line(
    sd: Systemd, autojump_clock: trio.testing.MockClock
) -> None:
    """Changes within status_interval are reported together, in Status order."""
    supervisor = Supervisor(
        Config(
            services=[
                new_service("web", forever),
                new_service("once", stop_after_seconds, 0.5, restart=Restart.TEMPORARY),
                new_service("job", fail_after_seconds, 1.0, restart=Restart.TEMPORARY),
            ]
        )
    )
    supervisor.add(systemd.notify(supervisor, status_interval=2))
    with trio.move_on_after(3):
        await supervisor.run()
    assert await sd.messages() == [
        (0.0, "READY=1"),
        (2.0, "STATUS=2 running, 1 stopped, 1 error"),
        (3.0, "STOPPING=1"),
    ]


async def test_an_unchanged_status_line_is_not_sent_again(
    sd: Systemd, autojump_clock: trio.testing.MockClock
) -> None:
    """A service that fails and is back within the interval changes no line."""
    supervisor = Supervisor(
        Config(
            services=[new_service("flappy", fail_after_seconds, 1.5)],
            restart_interval=0.25,
        )
    )
    supervisor.add(systemd.notify(supervisor))
    with trio.move_on_after(4.75):
        await supervisor.run()
    assert await sd.messages() == [
        (0.0, "READY=1"),
        (1.0, "STATUS=2 running"),
        (4.75, "STOPPING=1"),
    ]


async def test_the_first_status_counts_the_services_already_known(
    sd: Systemd, autojump_clock: trio.testing.MockClock
) -> None:
    """A notifier entered while the supervisor runs reports it a second later."""
    supervisor = Supervisor(two_services())
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(0.5)
        async with systemd.notify(supervisor):
            await trio.sleep(1.25)
        supervisor.stop()
    assert await sd.messages() == [
        (0.5, "READY=1"),
        (1.5, "STATUS=2 running"),
        (1.75, "STOPPING=1"),
    ]


# --- the socket ------------------------------------------------------------------


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="abstract sockets are Linux only"
)
async def test_an_abstract_socket_address_is_honoured(
    nursery: trio.Nursery,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """NOTIFY_SOCKET=@name addresses the abstract socket ``\\0name``."""
    name = f"trio-supervisor-test-{uuid.uuid4().hex}"
    receiver = await listen("\0" + name, nursery, monkeypatch, "@" + name)
    with receiver.sock:
        supervisor = Supervisor(Config(services=[new_service("web", forever)]))
        supervisor.add(systemd.notify(supervisor))
        with trio.move_on_after(1.5):
            await supervisor.run()
        assert await receiver.messages() == [
            (0.0, "READY=1"),
            (1.0, "STATUS=2 running"),
            (1.5, "STOPPING=1"),
        ]


async def test_a_socket_nobody_listens_on_is_logged_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Messages systemd does not take are dropped with one WARNING; all else runs."""
    missing = tmp_path / "missing"
    monkeypatch.setenv("NOTIFY_SOCKET", str(missing))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    updates: list[list[StatusUpdate]] = []
    supervisor = Supervisor(
        Config(
            services=[new_service("web", forever)],
            status_update_listeners=[updates.append],
        )
    )
    supervisor.add(systemd.notify(supervisor))
    with trio.move_on_after(3):
        await supervisor.run()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        f"cannot notify systemd at {str(missing)!r}: "
        "[Errno 2] No such file or directory"
    ]
    assert [u.status for u in updates[-1]] == [Status.STOPPED, Status.STOPPED]


async def test_a_relative_notify_socket_is_refused_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """NOTIFY_SOCKET that is neither absolute nor @name turns notifying off."""
    monkeypatch.setenv("NOTIFY_SOCKET", "run/notify")
    supervisor = Supervisor(Config(services=[new_service("web", forever)]))
    async with trio.open_nursery() as nursery, systemd.notify(supervisor):
        await nursery.start(supervisor.run)
        supervisor.stop()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "not notifying systemd: NOTIFY_SOCKET must be an absolute path or @name, "
        "got 'run/notify'"
    ]


# --- arguments -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"supervisor": "sup"},
            TypeError,
            r"^supervisor must be a trio_supervisor\.Supervisor, got 'sup'$",
        ),
        (
            {"status_interval": 0},
            ValueError,
            r"^status_interval must be > 0 seconds, got 0$",
        ),
        (
            {"status_interval": "1"},
            TypeError,
            r"^status_interval must be a number of seconds or a datetime\.timedelta, "
            r"got '1'$",
        ),
    ],
    ids=["supervisor", "interval-zero", "interval-type"],
)
def test_arguments_are_checked(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """notify() refuses a non-supervisor and a non-positive interval."""
    supervisor: Any = kwargs.pop("supervisor", Supervisor(Config()))
    with pytest.raises(error, match=message):
        systemd.notify(supervisor, **kwargs)
