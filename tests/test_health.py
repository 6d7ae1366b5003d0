"""The health server: /livez, /readyz, /status over real loopback HTTP, and its
defences against malformed, oversized, slow and numerous clients."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from trio_supervisor import (
    Config,
    Phase,
    Restart,
    ServiceSpec,
    Status,
    StatusUpdate,
    Supervisor,
    new_service,
    stop_requested,
)
from trio_supervisor.health import (
    HealthServer,
    HealthService,
    health_service,
    serve_health,
)

REAL_PEER_TIMEOUT = 5
"""Real-clock guard of each test that talks to httpx, a real peer."""

LIVEZ = b"GET /livez HTTP/1.1\r\nHost: test\r\n\r\n"
LIVEZ_THEN_CLOSE = b"GET /livez HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"


async def forever() -> None:
    await trio.sleep_forever()


async def fails() -> None:
    raise ValueError("boom")


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


async def fails_unprintably() -> None:
    raise Unprintable


@asynccontextmanager
async def running(
    config: Config, **server_options: Any
) -> AsyncIterator[tuple[Supervisor, HealthServer]]:
    """A running supervisor of ``config`` and a health server on it."""
    supervisor = Supervisor(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        async with serve_health(supervisor, **server_options) as server:
            yield supervisor, server
        supervisor.stop()


def client(server: HealthServer) -> httpx.AsyncClient:
    """An httpx client of ``server`` that ignores proxy settings of the host."""
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.port}",
        trust_env=False,
        limits=httpx.Limits(max_connections=500),
        timeout=None,  # each test has its own REAL_PEER_TIMEOUT
    )


def on_status(
    status: Status, event: trio.Event
) -> Callable[[list[StatusUpdate]], None]:
    """A listener that sets ``event`` once a snapshot holds ``status``."""

    def listener(snapshot: list[StatusUpdate]) -> None:
        if any(update.status is status for update in snapshot):
            event.set()

    return listener


# --- raw HTTP over a trio socket ---------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def parse_responses(data: bytes) -> list[RawResponse]:
    """The responses in ``data``, framed by their Content-Length."""
    responses = []
    while data:
        head, separator, data = data.partition(b"\r\n\r\n")
        assert separator, head
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        responses.append(
            RawResponse(int(status_line.split()[1]), headers, data[:length])
        )
        data = data[length:]
    return responses


async def connect(server: HealthServer) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", server.port)


async def receive_until_closed(stream: trio.SocketStream) -> bytes:
    chunks = []
    while chunk := await stream.receive_some(65536):
        chunks.append(chunk)
    return b"".join(chunks)


async def receive_responses(stream: trio.SocketStream, count: int) -> list[RawResponse]:
    """Read until ``count`` whole responses have arrived (the connection stays)."""
    data = b""
    while True:
        data += await stream.receive_some(65536)
        try:
            responses = parse_responses(data)
        except (AssertionError, KeyError, ValueError):
            continue
        if len(responses) == count and sum(len(r.body) for r in responses) == sum(
            int(r.headers["content-length"]) for r in responses
        ):
            return responses


async def exchange(server: HealthServer, request: bytes) -> list[RawResponse]:
    """Send ``request`` on a fresh connection; the responses until it closes."""
    stream = await connect(server)
    async with stream:
        await stream.send_all(request)
        return parse_responses(await receive_until_closed(stream))


# --- the endpoints -------------------------------------------------------------


class TestLivez:
    """/livez: 200 while the supervisor's run is alive and not stopping."""

    async def test_livez_is_ok_while_running(self) -> None:
        """A running supervisor is alive: 200 ``ok``."""
        with trio.fail_after(REAL_PEER_TIMEOUT):
            config = Config(services=[new_service("s", forever)])
            async with running(config) as (_, server), client(server) as http:
                response = await http.get("/livez")
        assert response.status_code == 200
        assert response.text == "ok\n"
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert response.headers["cache-control"] == "no-store"

    async def test_livez_is_503_before_run_and_after_stop(self) -> None:
        """Before run() and after it ended, /livez answers 503 with the phase."""
        supervisor = Supervisor(Config(name="main"))
        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with serve_health(supervisor) as server, client(server) as http:
                before = await http.get("/livez")
                async with trio.open_nursery() as nursery:
                    await nursery.start(supervisor.run)
                    during = await http.get("/livez")
                    supervisor.stop()
                after = await http.get("/livez")
        assert (before.status_code, before.text) == (
            503,
            "not alive: supervisor main is Idle\n",
        )
        assert during.status_code == 200
        assert (after.status_code, after.text) == (
            503,
            "not alive: supervisor main is Stopped\n",
        )

    async def test_livez_is_503_while_stopping(self) -> None:
        """Once shutdown has begun, /livez answers 503 naming the Stopping phase."""
        release = trio.Event()

        async def slow_to_stop() -> None:
            await stop_requested().wait()
            await release.wait()

        config = Config(
            name="main",
            services=[new_service("slow", slow_to_stop, shutdown_timeout=60)],
        )
        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with running(config) as (supervisor, server), client(server) as http:
                supervisor.stop()
                await supervisor.wait_phase(Phase.STOPPING)
                response = await http.get("/livez")
                release.set()
        assert (response.status_code, response.text) == (
            503,
            "not alive: supervisor main is Stopping\n",
        )


class TestReadyz:
    """/readyz: 200 when RUNNING with every service that should run running."""

    async def test_readyz_is_ok_when_every_service_runs(self) -> None:
        """Every service RUNNING in phase RUNNING: 200 ``ok``."""
        config = Config(services=[new_service("a", forever), new_service("b", forever)])
        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with running(config) as (_, server), client(server) as http:
                response = await http.get("/readyz")
        assert (response.status_code, response.text) == (200, "ok\n")

    async def test_readyz_names_failed_services_awaiting_restart(self) -> None:
        """A failed service waiting for its restart makes /readyz 503, named with
        its status."""
        failed = trio.Event()
        config = Config(
            name="main",
            services=[new_service("ok", forever), new_service("flaky", fails)],
            restart_interval=3600,
            status_update_listeners=[on_status(Status.ERROR, failed)],
        )
        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with running(config) as (_, server), client(server) as http:
                await failed.wait()
                response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.text == "not ready: supervisor main is Running\nflaky: Error\n"

    async def test_readyz_is_503_while_starting(self) -> None:
        """During startup /readyz is 503 and names the services not yet running;
        200 once they are."""
        go = trio.Event()

        async def slow_start(*, task_status: trio.TaskStatus[None]) -> None:
            await go.wait()
            task_status.started()
            await trio.sleep_forever()

        supervisor = Supervisor(
            Config(
                name="main",
                services=[new_service("slow", slow_start, ready=True)],
            )
        )
        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with (
                serve_health(supervisor) as server,
                client(server) as http,
                trio.open_nursery() as nursery,
            ):
                nursery.start_soon(supervisor.run)
                await supervisor.wait_phase(Phase.STARTING)
                starting = await http.get("/readyz")
                go.set()
                await supervisor.wait_phase(Phase.RUNNING)
                ready = await http.get("/readyz")
                supervisor.stop()
        assert starting.status_code == 503
        assert starting.text == "not ready: supervisor main is Starting\nslow: Idle\n"
        assert (ready.status_code, ready.text) == (200, "ok\n")

    async def test_readyz_ignores_services_ended_for_good(self) -> None:
        """A TEMPORARY service that ended need not run: /readyz stays 200."""
        ended = trio.Event()
        config = Config(
            services=[
                new_service("a", forever),
                new_service("once", fails, restart=Restart.TEMPORARY),
            ],
            status_update_listeners=[on_status(Status.ERROR, ended)],
        )
        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with running(config) as (_, server), client(server) as http:
                await ended.wait()
                response = await http.get("/readyz")
        assert (response.status_code, response.text) == (200, "ok\n")


class TestStatus:
    """/status: the snapshot as JSON with the seed's field names."""

    async def test_status_serialises_the_snapshot(self) -> None:
        """Each service's latest update, with statusName and, for a failure, the
        error's type and message."""
        failed = trio.Event()
        config = Config(
            services=[new_service("ok", forever), new_service("flaky", fails)],
            restart_interval=3600,
            status_update_listeners=[on_status(Status.ERROR, failed)],
        )
        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with running(config) as (supervisor, server), client(server) as http:
                await failed.wait()
                response = await http.get("/status")
                times = [update.time for update in supervisor.statuses()]
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == [
            {
                "serviceId": 0,
                "serviceName": "ok",
                "time": times[0],
                "status": 1,
                "statusName": "Running",
            },
            {
                "serviceId": 1,
                "serviceName": "flaky",
                "time": times[1],
                "status": 3,
                "statusName": "Error",
                "errorType": "ValueError",
                "errorMessage": "boom",
            },
        ]

    async def test_status_names_error_types_by_module(self) -> None:
        """A non-builtin error type is named ``module.QualName``; an error whose
        str() raises does not break the endpoint."""
        failed = trio.Event()
        config = Config(
            services=[new_service("odd", fails_unprintably)],
            restart_interval=3600,
            status_update_listeners=[on_status(Status.ERROR, failed)],
        )
        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with running(config) as (_, server), client(server) as http:
                await failed.wait()
                response = await http.get("/status")
        assert response.status_code == 200
        [entry] = response.json()
        assert entry["errorType"] == f"{Unprintable.__module__}.Unprintable"
        assert entry["errorMessage"] == "<unprintable Unprintable>"

    async def test_status_is_an_empty_list_before_run(self) -> None:
        """A supervisor that never ran has an empty snapshot."""
        supervisor = Supervisor(Config(services=[new_service("s", forever)]))
        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with serve_health(supervisor) as server, client(server) as http:
                response = await http.get("/status")
        assert (response.status_code, response.json()) == (200, [])


class TestRouting:
    """Methods, paths, HEAD and query strings."""

    async def test_head_answers_like_get_without_a_body(self) -> None:
        """HEAD gets GET's status and headers, and no body."""
        config = Config(services=[new_service("s", forever)])
        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with running(config) as (_, server), client(server) as http:
                get = await http.get("/status")
                head = await http.head("/status")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == get.headers["content-length"]

    @pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
    async def test_other_methods_get_405_with_allow(self, method: str) -> None:
        """A known path with another method is 405, with ``Allow: GET, HEAD``."""
        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with running(Config()) as (_, server), client(server) as http:
                response = await http.request(method, "/livez", content=b"x" * 100)
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"
        assert response.text == f"method {method} not allowed\n"

    @pytest.mark.parametrize(
        "path", ["/", "/livez/", "/LIVEZ", "/health", "/metrics"], ids=str
    )
    async def test_unknown_paths_get_404(self, path: str) -> None:
        """Paths other than the endpoints, and /metrics without metrics, are 404."""
        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with running(Config()) as (_, server), client(server) as http:
                response = await http.get(path)
        assert response.status_code == 404
        assert response.text == f"no such endpoint: {path}\n"

    async def test_query_string_is_ignored(self) -> None:
        """``/livez?verbose`` is /livez."""
        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with running(Config()) as (_, server), client(server) as http:
                response = await http.get("/livez?verbose=1")
        assert response.status_code == 200


class TestServer:
    """Binding, lifetime, concurrency and use as a service."""

    async def test_binds_loopback_and_listens_on_entry(self) -> None:
        """By default the server binds 127.0.0.1 on a free port, listening before
        the block starts."""
        supervisor = Supervisor(Config())
        async with serve_health(supervisor) as server:
            assert server.addresses == [("127.0.0.1", server.port)]
            assert server.port > 0
            stream = await connect(server)
            await stream.aclose()

    async def test_leaving_the_block_closes_the_socket(self) -> None:
        """After the block, nothing listens on the port any more."""
        supervisor = Supervisor(Config())
        async with serve_health(supervisor) as server:
            port = server.port
        with pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", port)

    async def test_exception_in_the_block_propagates_unwrapped(self) -> None:
        """An exception of the block comes out as itself, not in a group."""
        supervisor = Supervisor(Config())
        with pytest.raises(KeyError, match=r"^'mine'$"):
            async with serve_health(supervisor):
                raise KeyError("mine")

    async def test_many_concurrent_connections_are_all_answered(self) -> None:
        """100 concurrent requests past a bound of 8 connections are all answered
        200: the others wait for a slot."""
        config = Config(services=[new_service("s", forever)])
        statuses: list[int] = []

        async def probe(http: httpx.AsyncClient, path: str) -> None:
            statuses.append((await http.get(path)).status_code)

        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with (
                running(config, max_connections=8) as (_, server),
                client(server) as http,
            ):
                async with trio.open_nursery() as nursery:
                    for index in range(100):
                        path = ("/livez", "/readyz", "/status")[index % 3]
                        nursery.start_soon(probe, http, path)
                assert server.connections <= 8
        assert statuses == [200] * 100

    async def test_health_service_serves_under_the_supervisor(self) -> None:
        """As a service of the supervisor it reports on, the server is RUNNING
        once it listens, appears in /status, and closes when the supervisor
        stops."""
        supervisor = Supervisor(Config(services=[new_service("s", forever)]))
        spec = health_service(supervisor, name="probes")
        assert spec.ready is True
        health = spec.service
        assert isinstance(health, HealthService)
        supervisor.add(spec)
        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with trio.open_nursery() as nursery:
                await nursery.start(supervisor.run)
                server = health.server
                assert server is not None
                port = server.port
                async with client(server) as http:
                    ready = await http.get("/readyz")
                    status = await http.get("/status")
                supervisor.stop()
        assert (ready.status_code, ready.text) == (200, "ok\n")
        assert [entry["serviceName"] for entry in status.json()] == ["s", "probes"]
        assert health.server is None
        with pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", port)

    async def test_health_service_takes_service_options(self) -> None:
        """health_service passes ServiceSpec options on, ready=True unless told."""
        supervisor = Supervisor(Config())
        spec = health_service(supervisor, restart=Restart.TRANSIENT, ready=False)
        assert (spec.restart, spec.ready, spec.name) == (
            Restart.TRANSIENT,
            False,
            "health",
        )
        assert isinstance(ServiceSpec(HealthService(supervisor)).service, HealthService)


class TestArguments:
    """Arguments are checked when the server or service is built."""

    @pytest.mark.parametrize(
        ("kwargs", "error", "message"),
        [
            ({"port": -1}, ValueError, r"^port must be >= 0, got -1$"),
            ({"port": 70000}, ValueError, r"^port must be <= 65535, got 70000$"),
            ({"port": "80"}, TypeError, r"^port must be an int, got '80'$"),
            ({"host": b"::1"}, TypeError, r"^host must be a str or None, got b'::1'$"),
            (
                {"max_connections": 0},
                ValueError,
                r"^max_connections must be >= 1, got 0$",
            ),
            (
                {"request_timeout": 0},
                ValueError,
                r"^request_timeout must be > 0 seconds, got 0$",
            ),
            (
                {"max_request_size": 100},
                ValueError,
                r"^max_request_size must be >= 1024, got 100$",
            ),
            (
                {"metrics": "yes"},
                TypeError,
                r"^metrics must be a trio_supervisor\.metrics\.SupervisorMetrics "
                r"or None, got 'yes'$",
            ),
            ({"name": ""}, ValueError, r"^name must not be empty, got ''$"),
        ],
        ids=lambda value: str(value) if isinstance(value, dict) else "",
    )
    def test_bad_arguments_are_refused(
        self, kwargs: dict[str, Any], error: type[Exception], message: str
    ) -> None:
        """Each bad argument raises, naming it and showing the value."""
        with pytest.raises(error, match=message):
            HealthService(Supervisor(Config()), **kwargs)

    async def test_serve_health_checks_the_supervisor(self) -> None:
        """serve_health refuses anything but a Supervisor."""
        not_a_supervisor: Any = "main"
        with pytest.raises(
            TypeError,
            match=r"^supervisor must be a trio_supervisor\.Supervisor, got 'main'$",
        ):
            async with serve_health(not_a_supervisor):
                pass


# --- defences, on the mock clock with in-process trio sockets -------------------


class TestMalformedRequests:
    """Bad requests get 400 or 413 and a closed connection; nothing else breaks."""

    @pytest.mark.parametrize(
        "request_bytes",
        [
            pytest.param(b"GARBAGE\r\n\r\n", id="not-http"),
            pytest.param(b"GET /livez HTTP/1.1\r\n\r\n", id="no-host"),
            pytest.param(
                b"GET /livez HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n", id="bad-header"
            ),
            pytest.param(
                b"GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
                id="bad-length",
            ),
            pytest.param(
                b"GET /livez HTTP/1.1\r\nHost: x\r\n"
                b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
                id="bad-chunk",
            ),
            pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", id="tls"),
        ],
    )
    async def test_malformed_request_gets_400_and_close(
        self, autojump_clock: trio.testing.MockClock, request_bytes: bytes
    ) -> None:
        """A request h11 cannot parse is answered 400 and the connection closed;
        the server then answers the next client."""
        async with running(Config()) as (_, server):
            stream = await connect(server)
            async with stream:
                await stream.send_all(request_bytes)
                await stream.send_eof()
                [response] = parse_responses(await receive_until_closed(stream))
            assert response.status == 400
            assert response.headers["connection"] == "close"
            [after] = await exchange(server, LIVEZ_THEN_CLOSE)
            assert after.status == 200

    async def test_oversized_head_gets_413(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A request head over max_request_size is answered 413, then closed."""
        big = b"X-Big: " + b"a" * 10_000 + b"\r\n"
        async with running(Config(), max_request_size=4096) as (_, server):
            [response] = await exchange(
                server, b"GET /livez HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n"
            )
        assert response.status == 413
        assert response.headers["connection"] == "close"

    async def test_declared_oversized_body_gets_413_at_once(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A Content-Length over max_request_size is refused before its body is
        read."""
        async with running(Config()) as (_, server):
            [response] = await exchange(
                server,
                b"POST /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
            )
        assert response.status == 413
        assert response.body == (
            b"request body of 1000000 bytes; at most 16384 accepted\n"
        )

    async def test_chunked_oversized_body_gets_413(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A chunked body growing past max_request_size is refused when it does."""
        chunk = b"800\r\n" + b"a" * 0x800 + b"\r\n"
        async with running(Config(), max_request_size=4096) as (_, server):
            [response] = await exchange(
                server,
                b"POST /livez HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + chunk * 3,
            )
        assert response.status == 413

    async def test_small_body_is_read_and_the_connection_kept(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A body within the limit is read and dropped; the connection then
        serves the next request."""
        async with running(Config()) as (_, server):
            stream = await connect(server)
            async with stream:
                await stream.send_all(
                    b"POST /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                )
                [refused] = await receive_responses(stream, 1)
                await stream.send_all(LIVEZ)
                [answered] = await receive_responses(stream, 1)
        assert (refused.status, answered.status) == (405, 200)

    async def test_eof_mid_request_gets_400(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A client that stops sending halfway through its head gets 400."""
        async with running(Config()) as (_, server):
            stream = await connect(server)
            async with stream:
                await stream.send_all(b"GET /livez HTTP/1.1\r\nHo")
                await stream.send_eof()
                [response] = parse_responses(await receive_until_closed(stream))
        assert (response.status, response.body) == (
            400,
            b"peer unexpectedly closed connection\n",
        )

    async def test_http_1_0_is_answered_and_closed(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """An HTTP/1.0 request without Host is answered, then the server closes."""
        async with running(Config()) as (_, server):
            [response] = await exchange(server, b"GET /livez HTTP/1.0\r\n\r\n")
        assert (response.status, response.body) == (200, b"ok\n")


class TestSlowAndManyClients:
    """Deadlines and the connection bound, on exact mock-clock times."""

    async def test_pipelined_requests_are_answered_in_order(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Requests sent back to back on one connection get their responses in
        order, on that connection."""
        async with running(Config()) as (_, server):
            stream = await connect(server)
            async with stream:
                await stream.send_all(
                    LIVEZ
                    + b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                    + b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
                )
                responses = await receive_responses(stream, 3)
        assert [r.status for r in responses] == [200, 404, 200]

    async def test_idle_keep_alive_connection_closes_at_the_timeout(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A kept-alive connection with no new request is closed, silently,
        request_timeout after the last response."""
        async with running(Config(), request_timeout=7) as (_, server):
            stream = await connect(server)
            async with stream:
                await trio.sleep(3)
                await stream.send_all(LIVEZ)
                [response] = await receive_responses(stream, 1)
                assert trio.current_time() == 3.0
                assert await receive_until_closed(stream) == b""
                assert trio.current_time() == 10.0
        assert response.status == 200

    async def test_silent_client_is_closed_at_the_timeout(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A client that connects and sends nothing is closed without a response
        after request_timeout."""
        async with running(Config(), request_timeout=5) as (_, server):
            stream = await connect(server)
            async with stream:
                assert await receive_until_closed(stream) == b""
        assert trio.current_time() == 5.0

    async def test_stalled_request_gets_408_at_the_timeout(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A client that stalls mid-request gets 408 exactly request_timeout after
        connecting."""
        async with running(Config(), request_timeout=5) as (_, server):
            stream = await connect(server)
            async with stream:
                await stream.send_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
                data = await stream.receive_some(65536)
                assert trio.current_time() == 5.0
                [response] = parse_responses(data)
        assert response.status == 408
        assert response.headers["connection"] == "close"

    async def test_trickling_client_is_cut_at_the_timeout(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A client sending a byte a second cannot stretch its request past
        request_timeout: the deadline covers the whole request."""
        async with running(Config(), request_timeout=5) as (_, server):
            stream = await connect(server)
            received = b""

            async def trickle() -> None:
                # The server hangs up on us after its 408.
                with contextlib.suppress(trio.BrokenResourceError):
                    for byte in b"GET /livez HTTP/1.1\r\nX-Slow: " + b"a" * 100:
                        await stream.send_all(bytes([byte]))
                        await trio.sleep(1)

            async with stream, trio.open_nursery() as nursery:
                nursery.start_soon(trickle)
                received = await stream.receive_some(65536)
                assert trio.current_time() == 5.0
        assert parse_responses(received)[0].status == 408

    async def test_connections_past_the_bound_wait_for_a_slot(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """With max_connections stalled clients, a further client is served only
        when a slot frees: at their timeout."""
        async with running(Config(), max_connections=2, request_timeout=5) as (
            _,
            server,
        ):
            stalled = [await connect(server) for _ in range(2)]
            await trio.testing.wait_all_tasks_blocked()
            assert server.connections == 2
            waiting = await connect(server)
            async with waiting:
                await waiting.send_all(LIVEZ)
                [response] = await receive_responses(waiting, 1)
                assert trio.current_time() == 5.0
            for stream in stalled:
                await stream.aclose()
        assert response.status == 200

    async def test_clients_never_disturb_the_supervisor(
        self,
        autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Stalled, garbage-spewing and vanishing clients leave the supervised
        services on time and the server silent in the log."""
        caplog.set_level(logging.WARNING, logger="trio_supervisor")
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(trio.current_time())
                await trio.sleep(1)

        config = Config(services=[new_service("ticker", ticker)])
        async with running(config, max_connections=4, request_timeout=2) as (
            supervisor,
            server,
        ):
            for round_ in range(3):
                streams = [await connect(server) for _ in range(6)]
                for index, stream in enumerate(streams):
                    if index % 3 == 0:
                        await stream.send_all(b"\x00" * 1000)
                    elif index % 3 == 1:
                        await stream.send_all(b"GET /status HTTP/1.1\r\n")
                    else:
                        await stream.aclose()
                await trio.sleep_until(3.0 * (round_ + 1))
                for stream in streams:
                    await stream.aclose()
            assert supervisor.phase is Phase.RUNNING
            [response] = await exchange(server, LIVEZ_THEN_CLOSE)
        assert response.status == 200
        assert ticks == [float(t) for t in range(10)]
        assert caplog.records == []

    async def test_idle_kept_alive_connection_makes_room_for_a_new_client(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """At the bound, a connection idle between requests is closed as soon as
        a new client waits, and the new client is served at once."""
        async with running(Config(), max_connections=1) as (_, server):
            kept = await connect(server)
            async with kept:
                await kept.send_all(LIVEZ)
                [first] = await receive_responses(kept, 1)
                newcomer = await connect(server)
                async with newcomer:
                    await newcomer.send_all(LIVEZ_THEN_CLOSE)
                    [second] = parse_responses(await receive_until_closed(newcomer))
                assert await receive_until_closed(kept) == b""
        assert (first.status, second.status) == (200, 200)
        assert trio.current_time() == 0.0

    async def test_busy_connection_closes_after_its_response_when_crowded(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """At the bound, with a client waiting, a connection's response says
        ``Connection: close`` and the connection closes after it."""
        async with running(Config(), max_connections=1) as (_, server):
            busy = await connect(server)
            async with busy:
                await busy.send_all(b"GET /livez HTTP/1.1\r\n")
                waiting = await connect(server)
                async with waiting:
                    await waiting.send_all(LIVEZ_THEN_CLOSE)
                    await trio.testing.wait_all_tasks_blocked()
                    await busy.send_all(b"Host: x\r\n\r\n")
                    [answered] = parse_responses(await receive_until_closed(busy))
                    [served] = parse_responses(await receive_until_closed(waiting))
        assert answered.headers["connection"] == "close"
        assert (answered.status, served.status) == (200, 200)
        assert trio.current_time() == 0.0

    async def test_client_that_does_not_read_is_dropped_at_the_timeout(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A client that never reads a large response holds its connection only
        until request_timeout."""
        # A name of 8 MB makes /status larger than the socket buffers hold.
        config = Config(services=[new_service("s" * 8_000_000, forever)])
        async with running(config, request_timeout=5) as (_, server):
            stream = await connect(server)
            async with stream:
                await stream.send_all(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
                await trio.sleep(4.5)
                assert server.connections == 1
                await trio.sleep(1)
                assert server.connections == 0


def test_all_lists_the_public_names() -> None:
    """``__all__`` names exactly the module's public classes and functions."""
    import trio_supervisor.health as health

    public = {
        name
        for name, value in vars(health).items()
        if not name.startswith("_")
        and callable(value)
        and getattr(value, "__module__", None) == health.__name__
    }
    assert sorted(health.__all__) == sorted(public)
