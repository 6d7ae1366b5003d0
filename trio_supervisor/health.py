"""HTTP health endpoints of a supervisor, for Kubernetes probes and humans.

`serve_health` serves, from Trio tasks beside the supervisor, with
``h11`` over Trio's TCP listeners:

``GET /livez``
    200 ``ok`` while the supervisor's ``run()`` is in progress and not
    shutting down (phase STARTING or RUNNING); else 503, naming the phase.
    The answer comes from the supervisor's own Trio loop, so any answer at
    all also shows the loop is responsive.
``GET /readyz``
    200 ``ok`` when the phase is RUNNING and every service that should be
    RUNNING is (`unready_services` is
    empty); else 503: a first line ``not ready: supervisor NAME is PHASE``,
    then one line ``SERVICE: STATUS`` per service that is not ready.
``GET /status``
    200 with the snapshot (`statuses`) as a
    JSON list of objects with the seed's fields ``serviceId``,
    ``serviceName``, ``time`` and ``status`` (an int), plus ``statusName``
    (``"Running"``, …) and, when the update carries an exception,
    ``errorType`` and ``errorMessage``.
``GET /metrics``
    The registry of a `SupervisorMetrics`, when
    one is given (else 404), in the format the ``Accept`` header asks for
    (OpenMetrics or Prometheus text). It is collected in a worker thread, one
    scrape at a time; one not done within ``request_timeout`` gets 503.

``HEAD`` works wherever ``GET`` does. Other methods get 405, other paths
404, malformed requests 400, a body over ``max_request_size`` (or a head
over it by more than one 4 KiB read) 413, a request not received whole
within ``request_timeout`` 408; each of these closes the connection.
Otherwise connections are kept alive between requests.

No client can crash or stall the supervisor: each connection has its own
task and deadlines, at most ``max_connections`` are served at once and
further clients wait in the listen backlog (while one waits, connections
idle between requests are closed and busy ones close after their response),
and an unexpected error on a connection is logged and closes only that
connection.
"""

from __future__ import annotations

import errno
import http
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, final

import h11
import trio

from . import _util
from ._logging import LOGGER
from ._service import ServiceSpec
from ._status import Phase, StatusUpdate
from ._supervisor import Supervisor

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._service import ServiceOptions
    from .metrics import SupervisorMetrics

__all__ = [
    "HealthServer",
    "HealthService",
    "health_service",
    "serve_health",
]

DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_MAX_REQUEST_SIZE = 16 * 1024

_RECEIVE_SIZE = 4096
_ACCEPT_RETRY_DELAY = 0.1
_LINGER_SECONDS = 1.0
"""After an error response, how long we read on before closing."""
# accept() fails with these when the process or system is out of resources;
# waiting a little lets open connections close.
_ACCEPT_CAPACITY_ERRNOS = frozenset(
    code
    for code in (
        getattr(errno, name, None) for name in ("EMFILE", "ENFILE", "ENOMEM", "ENOBUFS")
    )
    if code is not None
)
_ALLOW = "GET, HEAD"
_TEXT = "text/plain; charset=utf-8"
_JSON = "application/json"


@dataclass(frozen=True)
class _Settings:
    host: str | None
    port: int
    metrics: SupervisorMetrics | None
    max_connections: int
    request_timeout: float
    max_request_size: int


def _settle(
    supervisor: object,
    host: object,
    port: object,
    metrics: object,
    max_connections: object,
    request_timeout: object,
    max_request_size: object,
) -> _Settings:
    if not isinstance(supervisor, Supervisor):
        raise TypeError(
            f"supervisor must be a trio_supervisor.Supervisor, got {supervisor!r}"
        )
    if host is not None and not isinstance(host, str):
        raise TypeError(f"host must be a str or None, got {host!r}")
    port_number = _util.integer("port", port, minimum=0)
    if port_number > 65535:
        raise ValueError(f"port must be <= 65535, got {port!r}")
    return _Settings(
        host=host,
        port=port_number,
        metrics=_check_metrics(metrics),
        max_connections=_util.integer("max_connections", max_connections, minimum=1),
        request_timeout=_util.positive_seconds("request_timeout", request_timeout),
        max_request_size=_util.integer(
            "max_request_size", max_request_size, minimum=1024
        ),
    )


def _check_metrics(metrics: object) -> SupervisorMetrics | None:
    if metrics is None:
        return None
    try:
        from .metrics import SupervisorMetrics
    except ImportError:
        pass
    else:
        if isinstance(metrics, SupervisorMetrics):
            return metrics
    raise TypeError(
        f"metrics must be a trio_supervisor.metrics.SupervisorMetrics or None, "
        f"got {metrics!r}"
    )


class _RequestTooLarge(Exception):
    pass


@final
class HealthServer:
    """A running health server, as `serve_health` yields it; not built directly.

    For example:

        async with serve_health(supervisor) as server:
            print(f"probes: http://127.0.0.1:{server.port}/readyz")

    Attributes:
        port: The port of the first listening socket (the bound one when
            ``port=0`` was asked for).
        addresses: The ``(host, port)`` of every listening socket.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        listeners: list[trio.SocketListener],
        settings: _Settings,
    ) -> None:
        self._supervisor = supervisor
        self._listeners = listeners
        self._settings = settings
        self._slots = trio.Semaphore(settings.max_connections)
        self._connections = 0
        self._crowded = False
        self._scrapes = trio.CapacityLimiter(1)
        self._idle: set[trio.CancelScope] = set()
        self.addresses: list[tuple[str, int]] = [
            _address(listener.socket.getsockname()) for listener in listeners
        ]
        self.port: int = self.addresses[0][1]

    def __repr__(self) -> str:
        return f"<HealthServer on {self.addresses}, {self._connections} connections>"

    @property
    def connections(self) -> int:
        """How many client connections are open now (at most ``max_connections``)."""
        return self._connections

    # --- accepting ------------------------------------------------------------

    async def _accept_loop(
        self, listener: trio.SocketListener, nursery: trio.Nursery
    ) -> None:
        while True:
            if self._slots.value == 0:
                # Full. Once a client waits in the backlog, make room: idle
                # kept-alive connections close, busy ones close after their
                # response.
                await trio.lowlevel.wait_readable(listener.socket)
                if self._slots.value == 0:
                    self._crowded = True
                    for scope in list(self._idle):
                        scope.cancel()
            # Take a slot before accepting: past max_connections, clients wait
            # in the kernel's backlog instead of costing us a task each.
            await self._slots.acquire()
            self._crowded = False
            try:
                stream = await self._accept(listener)
            except BaseException:
                self._slots.release()
                raise
            self._connections += 1
            nursery.start_soon(self._serve_connection, stream)

    async def _accept(self, listener: trio.SocketListener) -> trio.SocketStream:
        while True:
            try:
                return await listener.accept()
            except OSError as exc:
                if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                    raise
                LOGGER.warning(
                    "health server: accept() failed (%s); retrying in %gs",
                    exc,
                    _ACCEPT_RETRY_DELAY,
                )
                await trio.sleep(_ACCEPT_RETRY_DELAY)

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        try:
            await self._converse(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away
        except Exception:
            LOGGER.exception("health server: error on a connection; closing it")
        finally:
            try:
                await trio.aclose_forcefully(stream)
            finally:
                self._connections -= 1
                self._slots.release()

    # --- one connection -------------------------------------------------------

    async def _converse(self, stream: trio.SocketStream) -> None:
        """Answer requests on one connection until either side closes it."""
        settings = self._settings
        conn = h11.Connection(
            h11.SERVER, max_incomplete_event_size=settings.max_request_size
        )
        served = False
        while True:
            deadline = trio.current_time() + settings.request_timeout
            if served and not conn.trailing_data[0]:
                # Between requests: give the slot up if a new client needs it.
                with trio.move_on_at(deadline) as idle:
                    self._idle.add(idle)
                    try:
                        data = await stream.receive_some(_RECEIVE_SIZE)
                    finally:
                        self._idle.discard(idle)
                if idle.cancelled_caught:
                    return
                conn.receive_data(data)
            request: h11.Request | None = None
            refusal: tuple[int, str] | None = None
            with trio.move_on_at(deadline) as receiving:
                try:
                    request = await self._receive_request(stream, conn)
                except h11.RemoteProtocolError as exc:
                    hint = exc.error_status_hint
                    refusal = (413 if hint in (413, 431) else 400, str(exc))
                except _RequestTooLarge as exc:
                    refusal = (413, str(exc))
            if refusal is not None:
                await self._send_error(stream, conn, *refusal)
                return
            if receiving.cancelled_caught:
                if conn.their_state is not h11.IDLE or conn.trailing_data[0]:
                    await self._send_error(
                        stream, conn, 408, "request not received in time"
                    )
                return  # an idle connection just closes
            if request is None:
                return  # closed by the client between requests
            status, headers, body = await self._route(request)
            if self._crowded:
                headers.append(("Connection", "close"))
            head = request.method == b"HEAD"
            data = conn.send(
                h11.Response(
                    status_code=status, headers=headers, reason=_reason(status)
                )
            )
            if not head:
                data += conn.send(h11.Data(data=body))
            data += conn.send(h11.EndOfMessage())
            if not await self._send(stream, data):
                return
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()
            served = True

    async def _receive_request(
        self, stream: trio.SocketStream, conn: h11.Connection
    ) -> h11.Request | None:
        """The next whole request (its body read and dropped), or None at EOF."""
        limit = self._settings.max_request_size
        request: h11.Request | None = None
        body_size = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(_RECEIVE_SIZE))
            elif isinstance(event, h11.Request):
                request = event
                length = _content_length(event)
                if length is not None and length > limit:
                    raise _RequestTooLarge(
                        f"request body of {length} bytes; at most {limit} accepted"
                    )
            elif isinstance(event, h11.Data):
                body_size += len(event.data)
                if body_size > limit:
                    raise _RequestTooLarge(
                        f"request body over {limit} bytes; at most {limit} accepted"
                    )
            elif isinstance(event, h11.EndOfMessage):
                return request
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _send(self, stream: trio.SocketStream, data: bytes) -> bool:
        """Send ``data`` within the timeout; False if the client did not take it."""
        with trio.move_on_after(self._settings.request_timeout):
            await stream.send_all(data)
            return True
        return False

    async def _send_error(
        self, stream: trio.SocketStream, conn: h11.Connection, status: int, detail: str
    ) -> None:
        """Answer ``status`` and close, if the exchange still allows a response."""
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = f"{detail}\n".encode()
        headers = _headers(_TEXT, body)
        headers.append(("Connection", "close"))
        try:
            data = conn.send(
                h11.Response(
                    status_code=status, headers=headers, reason=_reason(status)
                )
            )
            data += conn.send(h11.Data(data=body))
            data += conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            return  # a HEAD request: no body allowed; just close
        if await self._send(stream, data):
            await self._linger(stream)

    async def _linger(self, stream: trio.SocketStream) -> None:
        """Drop what the client still sends for a moment before closing, so the
        kernel does not reset the connection and lose our error response."""
        with trio.move_on_after(_LINGER_SECONDS):
            await stream.send_eof()
            received = 0
            while received < self._settings.max_request_size:
                data = await stream.receive_some(_RECEIVE_SIZE)
                if not data:
                    return
                received += len(data)

    # --- the endpoints ----------------------------------------------------------

    async def _route(
        self, request: h11.Request
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        path = request.target.partition(b"?")[0]
        endpoint = {
            b"/livez": self._livez,
            b"/readyz": self._readyz,
            b"/status": self._status,
        }.get(path)
        metrics = path == b"/metrics" and self._settings.metrics is not None
        if endpoint is None and not metrics:
            return _text(404, f"no such endpoint: {path.decode('latin-1')}\n")
        if request.method not in (b"GET", b"HEAD"):
            status, headers, body = _text(
                405, f"method {request.method.decode('latin-1')} not allowed\n"
            )
            headers.append(("Allow", _ALLOW))
            return status, headers, body
        try:
            if endpoint is None:
                return await self._metrics(request)
            return endpoint(request)
        except Exception:
            LOGGER.exception("health server: %s failed", path.decode("latin-1"))
            return _text(500, "internal error; see the server's log\n")

    def _livez(self, request: h11.Request) -> tuple[int, list[tuple[str, str]], bytes]:
        supervisor = self._supervisor
        phase = supervisor.phase
        if supervisor.running and phase in (Phase.STARTING, Phase.RUNNING):
            return _text(200, "ok\n")
        return _text(503, f"not alive: supervisor {supervisor.name} is {phase}\n")

    def _readyz(self, request: h11.Request) -> tuple[int, list[tuple[str, str]], bytes]:
        supervisor = self._supervisor
        phase = supervisor.phase
        unready = supervisor.unready_services()
        if phase is Phase.RUNNING and supervisor.running and not unready:
            return _text(200, "ok\n")
        lines = [f"not ready: supervisor {supervisor.name} is {phase}"]
        lines.extend(f"{update.service_name}: {update.status}" for update in unready)
        return _text(503, "\n".join(lines) + "\n")

    def _status(self, request: h11.Request) -> tuple[int, list[tuple[str, str]], bytes]:
        snapshot = [_status_entry(update) for update in self._supervisor.statuses()]
        body = json.dumps(snapshot).encode() + b"\n"
        return 200, _headers(_JSON, body), body

    async def _metrics(
        self, request: h11.Request
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        metrics = self._settings.metrics
        assert metrics is not None
        accept = ", ".join(
            value.decode("latin-1")
            for name, value in request.headers
            if name == b"accept"
        )
        # Collecting a large registry takes a while: in a thread, one scrape at
        # a time, it never holds up the supervisor's loop.
        with trio.move_on_after(self._settings.request_timeout):
            body, content_type = await trio.to_thread.run_sync(
                metrics.exposition,
                accept,
                limiter=self._scrapes,
                abandon_on_cancel=True,
            )
            return 200, _headers(content_type, body), body
        LOGGER.warning(
            "health server: metrics not collected within %gs",
            self._settings.request_timeout,
        )
        return _text(503, "metrics not collected in time\n")


def _reason(status: int) -> bytes:
    return http.HTTPStatus(status).phrase.encode()


def _address(sockname: Any) -> tuple[str, int]:
    return str(sockname[0]), int(sockname[1])


def _content_length(request: h11.Request) -> int | None:
    for name, value in request.headers:
        if name == b"content-length":
            return int(value)  # h11 checked it is digits
    return None


def _headers(content_type: str, body: bytes) -> list[tuple[str, str]]:
    return [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ]


def _text(status: int, text: str) -> tuple[int, list[tuple[str, str]], bytes]:
    body = text.encode()
    return status, _headers(_TEXT, body), body


def _status_entry(update: StatusUpdate) -> dict[str, Any]:
    entry = update.to_dict()
    entry["statusName"] = str(update.status)
    err = update.err
    if err is not None:
        cls = type(err)
        module = cls.__module__
        entry["errorType"] = (
            cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
        )
        try:
            entry["errorMessage"] = str(err)
        except Exception:
            entry["errorMessage"] = f"<unprintable {cls.__qualname__}>"
    return entry


@asynccontextmanager
async def serve_health(
    supervisor: Supervisor,
    *,
    host: str | None = "127.0.0.1",
    port: int = 0,
    metrics: SupervisorMetrics | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    request_timeout: float | timedelta = DEFAULT_REQUEST_TIMEOUT,
    max_request_size: int = DEFAULT_MAX_REQUEST_SIZE,
) -> AsyncIterator[HealthServer]:
    """Serve ``/livez``, ``/readyz``, ``/status`` (and ``/metrics``) while the
    block runs.

    The sockets are listening when the block starts, so ``server.port`` can
    be probed at once; leaving the block closes them and every connection:

        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            async with serve_health(supervisor, port=8080) as server:
                await trio.sleep_forever()

    To run it as one of the supervisor's services instead, see
    `health_service`.

    Args:
        supervisor: The supervisor to report on.
        host: The address to bind; the default, loopback, keeps the endpoints
            private to the machine. ``None`` binds every interface; ``"0.0.0.0"``
            every IPv4 one (what a Kubernetes probe needs).
        port: The port to bind; 0 picks a free one (see ``server.port``).
        metrics: Serve the registry of these metrics on ``/metrics``.
        max_connections: Connections served at once; further clients wait
            in the listen backlog until one ends.
        request_timeout: Seconds a client has to send each whole request (counted
            from the connection's start or the previous response), and to
            take each response. An idle connection is closed after it.
        max_request_size: Largest request head, and largest body, in bytes.

    Yields:
        The running `HealthServer`.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: An argument has a bad value.
        OSError: The address cannot be bound.
    """
    settings = _settle(
        supervisor,
        host,
        port,
        metrics,
        max_connections,
        request_timeout,
        max_request_size,
    )
    listeners = await trio.open_tcp_listeners(settings.port, host=settings.host)
    try:
        server = HealthServer(supervisor, listeners, settings)
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(server._accept_loop, listener, nursery)
            try:
                yield server
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # Our tasks never raise but a listener's accept() failure; the block's
        # own exception comes out alone, as from a plain ``async with``.
        if len(group.exceptions) == 1:
            exc = group.exceptions[0]
            raise exc from exc.__cause__
        raise
    finally:
        for listener in listeners:
            await trio.aclose_forcefully(listener)


@final
class HealthService:
    """The health server as a service: the endpoints follow the supervisor's life.

    Add it with ``ready=True`` (as `health_service` does) so it counts as
    RUNNING once its sockets listen; `server` gives the bound port:

        health = HealthService(supervisor, port=0)
        supervisor.add(health, ready=True)
        ...
        port = health.server.port  # while it runs

    The arguments are those of `serve_health`, plus ``name``.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: An argument has a bad value.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        *,
        name: str = "health",
        host: str | None = "127.0.0.1",
        port: int = 0,
        metrics: SupervisorMetrics | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        request_timeout: float | timedelta = DEFAULT_REQUEST_TIMEOUT,
        max_request_size: int = DEFAULT_MAX_REQUEST_SIZE,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        if not name:
            raise ValueError(f"name must not be empty, got {name!r}")
        self.name = name
        self._supervisor = supervisor
        self._settings = _settle(
            supervisor,
            host,
            port,
            metrics,
            max_connections,
            request_timeout,
            max_request_size,
        )
        self._server: HealthServer | None = None

    def __repr__(self) -> str:
        return f"<HealthService {self.name!r}>"

    @property
    def server(self) -> HealthServer | None:
        """The running server, or None when the service is not running."""
        return self._server

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled; report started once the sockets listen."""
        settings = self._settings
        async with serve_health(
            self._supervisor,
            host=settings.host,
            port=settings.port,
            metrics=settings.metrics,
            max_connections=settings.max_connections,
            request_timeout=settings.request_timeout,
            max_request_size=settings.max_request_size,
        ) as server:
            self._server = server
            try:
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._server = None


def health_service(
    supervisor: Supervisor,
    *,
    name: str = "health",
    host: str | None = "127.0.0.1",
    port: int = 0,
    metrics: SupervisorMetrics | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    request_timeout: float | timedelta = DEFAULT_REQUEST_TIMEOUT,
    max_request_size: int = DEFAULT_MAX_REQUEST_SIZE,
    **options: Unpack[ServiceOptions],
) -> ServiceSpec:
    """The health server as a service of ``supervisor`` itself, ``ready=True``.

    The server arguments are those of `serve_health`; the other keywords
    are the `ServiceSpec` options:

        supervisor = Supervisor(Config(services=services))
        supervisor.add(health_service(supervisor, host="0.0.0.0", port=8080))
        await supervisor.run()

    It appears in ``/status`` and ``/readyz`` like any service; it is
    restarted by its policy if binding fails (e.g. the port is taken).

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: An argument has a bad value.
    """
    service = HealthService(
        supervisor,
        name=name,
        host=host,
        port=port,
        metrics=metrics,
        max_connections=max_connections,
        request_timeout=request_timeout,
        max_request_size=max_request_size,
    )
    options.setdefault("ready", True)
    return ServiceSpec(service, **options)
