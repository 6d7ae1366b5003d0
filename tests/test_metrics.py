"""Prometheus metrics: counters, gauges and the run-duration histogram, read back
with prometheus-client's parsers, and served on the health server's /metrics."""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

import trio_supervisor
from trio_supervisor import Config, Restart, Strategy, Supervisor, new_service
from trio_supervisor.health import serve_health
from trio_supervisor.metrics import SupervisorMetrics

REAL_PEER_TIMEOUT = 5
"""Real-clock guard of each test that talks to httpx, a real peer."""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
"""(name, labels) to value, as read back from a registry."""


def read(
    registry: CollectorRegistry,
) -> Samples:
    """Every sample of ``registry``, as the text parser reads them back."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(
    samples: Samples,
    name: str,
    **labels: str,
) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def counters(
    samples: Samples,
    service: str,
    supervisor: str = "supervisor",
) -> dict[str, float | None]:
    """The counters of one service: starts, restarts, errors, panics."""
    labels = {"supervisor": supervisor, "service": service}
    prefix = "trio_supervisor_service_"
    return {
        "starts": sample(samples, f"{prefix}starts_total", **labels),
        "restarts": sample(samples, f"{prefix}restarts_total", **labels),
        "errors": sample(samples, f"{prefix}failures_total", status="error", **labels),
        "panics": sample(samples, f"{prefix}failures_total", status="panic", **labels),
    }


def durations(
    samples: Samples,
    service: str,
    *bounds: str,
) -> tuple[float | None, ...]:
    """The run-duration histogram's count, sum and the named buckets."""
    labels = {"supervisor": "supervisor", "service": service}
    name = "trio_supervisor_service_run_duration_seconds"
    return (
        sample(samples, f"{name}_count", **labels),
        sample(samples, f"{name}_sum", **labels),
        *(sample(samples, f"{name}_bucket", le=le, **labels) for le in bounds),
    )


def status_gauges(
    samples: Samples,
) -> dict[str, float]:
    """Service name to the value of its status gauge."""
    return {
        dict(labels)["service"]: value
        for (name, labels), value in samples.items()
        if name == "trio_supervisor_service_status"
    }


def fails_after(seconds: float) -> Any:
    async def run() -> None:
        await trio.sleep(seconds)
        raise ValueError("boom")

    return run


async def forever() -> None:
    await trio.sleep_forever()


class Panic(BaseException):
    """A BaseException that is neither KeyboardInterrupt nor SystemExit."""


async def run_tracked(
    seconds: float, config: Config, registry: CollectorRegistry
) -> Supervisor:
    """Run a supervisor of ``config``, tracked in ``registry``, for ``seconds``."""
    supervisor = Supervisor(config)
    SupervisorMetrics(registry=registry).track(supervisor)
    with trio.move_on_after(seconds):
        await supervisor.run()
    return supervisor


class TestCounting:
    """Every update counts: starts, restarts, failures, durations, statuses."""

    async def test_counts_starts_restarts_failures_and_durations(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A service failing after 1 s, restarted 2 s later, over 8.5 s: 3 starts,
        2 restarts, 3 errors, 3 runs of exactly 1 s; its last status is Error."""
        registry = CollectorRegistry()
        config = Config(
            services=[
                new_service("flaky", fails_after(1)),
                new_service("steady", forever),
            ],
            restart_interval=2,
        )
        await run_tracked(8.5, config, registry)
        samples = read(registry)
        assert counters(samples, "flaky") == {
            "starts": 3,
            "restarts": 2,
            "errors": 3,
            "panics": 0,
        }
        assert counters(samples, "steady") == {
            "starts": 1,
            "restarts": 0,
            "errors": 0,
            "panics": 0,
        }
        assert durations(samples, "flaky", "0.1", "1.0", "+Inf") == (3, 3.0, 0, 3, 3)
        # steady's one run lasted from 0 to the shutdown at 8.5.
        assert durations(samples, "steady", "1.0", "10.0") == (1, 8.5, 0, 1)
        assert status_gauges(samples) == {"flaky": 3, "steady": 2}
        assert sample(samples, "trio_supervisor_phase", supervisor="supervisor") == 4

    async def test_panics_are_counted_by_their_status(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A BaseException ending a run counts under status="panic"."""

        async def panics() -> None:
            await trio.sleep(1)
            raise Panic

        registry = CollectorRegistry()
        config = Config(services=[new_service("p", panics)], restart_interval=1)
        await run_tracked(4.5, config, registry)
        assert counters(read(registry), "p") == {
            "starts": 3,
            "restarts": 2,
            "errors": 0,
            "panics": 2,
        }

    async def test_no_update_is_missed_when_listeners_coalesce(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """500 immediate failures are all counted, though a slow listener with a
        buffer of 1 sees only coalesced snapshots."""
        failures = 0

        async def fails_500_times() -> None:
            nonlocal failures
            if failures == 500:
                await trio.sleep_forever()
            failures += 1
            raise ValueError("again")

        async def slow_listener(snapshot: object) -> None:
            await trio.sleep(1000)

        registry = CollectorRegistry()
        config = Config(
            services=[new_service("hasty", fails_500_times)],
            status_update_listeners=[slow_listener],
            listener_buffer=1,
            listener_shutdown_timeout=0,
        )
        await run_tracked(1, config, registry)
        assert counters(read(registry), "hasty") == {
            "starts": 501,
            "restarts": 500,
            "errors": 500,
            "panics": 0,
        }

    async def test_first_start_of_each_run_is_no_restart(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Running a supervisor again starts its services afresh: starts count,
        restarts do not, even for a service that ended during startup."""
        registry = CollectorRegistry()
        supervisor = Supervisor(
            Config(
                services=[
                    new_service("once", forever, restart=Restart.TEMPORARY),
                    new_service("quick", fails_after(0), restart=Restart.TEMPORARY),
                ]
            )
        )
        SupervisorMetrics(registry=registry).track(supervisor)
        for _ in range(3):
            with trio.move_on_after(1):
                await supervisor.run()
        samples = read(registry)
        for service in ("once", "quick"):
            assert counters(samples, service)["starts"] == 3
            assert counters(samples, service)["restarts"] == 0

    async def test_group_restart_counts_each_restarted_service(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """ONE_FOR_ALL: one failure restarts both services, counted for each; only
        the failed one counts a failure."""
        registry = CollectorRegistry()
        config = Config(
            services=[new_service("a", fails_after(1)), new_service("b", forever)],
            strategy=Strategy.ONE_FOR_ALL,
            restart_interval=10,
        )
        await run_tracked(11.5, config, registry)
        samples = read(registry)
        assert counters(samples, "a") == {
            "starts": 2,
            "restarts": 1,
            "errors": 1,
            "panics": 0,
        }
        assert counters(samples, "b") == {
            "starts": 2,
            "restarts": 1,
            "errors": 0,
            "panics": 0,
        }

    async def test_status_gauge_follows_the_snapshot_and_removal(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """The status gauge shows each service's current status and drops a
        removed service; its counters stay."""
        registry = CollectorRegistry()
        supervisor = Supervisor(
            Config(services=[new_service("a", forever), new_service("b", forever)])
        )
        SupervisorMetrics(registry=registry).track(supervisor)
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            running = read(registry)
            await supervisor.remove(1)
            removed = read(registry)
            supervisor.stop()
        assert status_gauges(running) == {"a": 1, "b": 1}
        assert sample(running, "trio_supervisor_phase", supervisor="supervisor") == 2
        assert status_gauges(removed) == {"a": 1}
        assert counters(removed, "b")["starts"] == 1

    async def test_tracking_mid_run_counts_from_then(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Tracked after its start, a service is counted from then on; its next
        start after an earlier run is still a restart."""
        registry = CollectorRegistry()
        metrics = SupervisorMetrics(registry=registry)
        supervisor = Supervisor(
            Config(services=[new_service("s", fails_after(1))], restart_interval=1)
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            await trio.sleep(1.5)
            metrics.track(supervisor)
            await trio.sleep(1)
            samples = read(registry)
            supervisor.stop()
        assert counters(samples, "s") == {
            "starts": 1,
            "restarts": 1,
            "errors": 0,
            "panics": 0,
        }

    async def test_untrack_stops_counting(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """After untrack(), updates are not counted and the supervisor's gauges go;
        the counters stay."""
        registry = CollectorRegistry()
        metrics = SupervisorMetrics(registry=registry)
        supervisor = Supervisor(
            Config(services=[new_service("s", fails_after(1))], restart_interval=1)
        )
        untrack = metrics.track(supervisor)
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            untrack()
            untrack()  # a second call is harmless
            await trio.sleep(2.5)
            samples = read(registry)
            supervisor.stop()
        assert counters(samples, "s")["starts"] == 1
        assert counters(samples, "s")["errors"] == 0
        assert status_gauges(samples) == {}
        assert sample(samples, "trio_supervisor_phase", supervisor="supervisor") is None

    async def test_supervisors_are_told_apart_by_name(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Two supervisors tracked by one SupervisorMetrics get their own series,
        labelled with their names."""
        registry = CollectorRegistry()
        metrics = SupervisorMetrics(registry=registry)
        first = Supervisor(Config(name="first", services=[new_service("s", forever)]))
        second = Supervisor(Config(name="second", services=[new_service("s", forever)]))
        metrics.track(first)
        metrics.track(second)
        async with trio.open_nursery() as nursery:
            await nursery.start(first.run)
            samples = read(registry)
            first.stop()
        assert counters(samples, "s", "first")["starts"] == 1
        assert counters(samples, "s", "second")["starts"] is None
        assert sample(samples, "trio_supervisor_phase", supervisor="second") == 0


class TestSetup:
    """Construction, registration and the optional dependency."""

    def test_namespace_prefixes_every_metric(self) -> None:
        """namespace replaces ``trio_supervisor`` in every metric name."""
        registry = CollectorRegistry()
        metrics = SupervisorMetrics(registry=registry, namespace="app")
        metrics.track(Supervisor(Config()))
        assert {name for name, _ in read(registry)} == {"app_phase"}
        assert [family.name for family in metrics.describe()] == [
            "app_service_starts",
            "app_service_restarts",
            "app_service_failures",
            "app_service_status",
            "app_service_run_duration_seconds",
            "app_phase",
        ]

    def test_a_registry_takes_one_supervisor_metrics(self) -> None:
        """A second SupervisorMetrics on one registry is refused; after close()
        the registry takes a new one."""
        registry = CollectorRegistry()
        metrics = SupervisorMetrics(registry=registry)
        with pytest.raises(
            ValueError, match=r"^Duplicated timeseries in CollectorRegistry: "
        ):
            SupervisorMetrics(registry=registry)
        metrics.close()
        assert generate_latest(registry) == b""
        SupervisorMetrics(registry=registry)

    def test_close_stops_tracking(self) -> None:
        """close() untracks every supervisor."""
        supervisor = Supervisor(Config())
        metrics = SupervisorMetrics(registry=CollectorRegistry())
        metrics.track(supervisor)
        metrics.close()
        assert supervisor._observers == []
        assert repr(metrics) == "<SupervisorMetrics tracking []>"

    def test_tracking_two_supervisors_of_one_name_is_refused(self) -> None:
        """Two tracked supervisors may not share a name: their series would."""
        metrics = SupervisorMetrics(registry=CollectorRegistry())
        metrics.track(Supervisor(Config(name="main")))
        with pytest.raises(
            ValueError,
            match=r"^supervisor: a supervisor named 'main' is tracked already; "
            r"give each tracked supervisor a distinct Config\.name$",
        ):
            metrics.track(Supervisor(Config(name="main")))

    @pytest.mark.parametrize(
        ("kwargs", "error", "message"),
        [
            (
                {"registry": "global"},
                TypeError,
                r"^registry must be a prometheus_client\.CollectorRegistry, "
                r"got 'global'$",
            ),
            ({"namespace": 7}, TypeError, r"^namespace must be a str, got 7$"),
            (
                {"namespace": "my-app"},
                ValueError,
                r"^namespace must be a valid metric name prefix, got 'my-app'$",
            ),
            (
                {"buckets": "1,2"},
                TypeError,
                r"^buckets must be a sequence of numbers, got '1,2'$",
            ),
            (
                {"buckets": [1, "2"]},
                TypeError,
                r"^buckets must be a sequence of numbers, got \[1, '2'\]$",
            ),
            (
                {"buckets": [2, 1]},
                ValueError,
                r"^buckets must be finite, increasing numbers \(at least one\), "
                r"got \[2, 1\]$",
            ),
            (
                {"buckets": []},
                ValueError,
                r"^buckets must be finite, increasing numbers \(at least one\), "
                r"got \[\]$",
            ),
        ],
        ids=lambda value: str(value) if isinstance(value, dict) else "",
    )
    def test_bad_arguments_are_refused(
        self, kwargs: dict[str, Any], error: type[Exception], message: str
    ) -> None:
        """Each bad argument raises, naming it and showing the value."""
        kwargs.setdefault("registry", CollectorRegistry())
        with pytest.raises(error, match=message):
            SupervisorMetrics(**kwargs)

    def test_track_refuses_what_is_not_a_supervisor(self) -> None:
        """track() takes a Supervisor only."""
        metrics = SupervisorMetrics(registry=CollectorRegistry())
        not_a_supervisor: Any = "main"
        with pytest.raises(
            TypeError,
            match=r"^supervisor must be a trio_supervisor\.Supervisor, got 'main'$",
        ):
            metrics.track(not_a_supervisor)

    def test_a_trailing_infinite_bucket_is_allowed(self) -> None:
        """``+Inf`` may end the buckets; it is always there anyway."""
        registry = CollectorRegistry()
        metrics = SupervisorMetrics(registry=registry, buckets=[1, float("inf")])
        assert metrics.registry is registry

    async def test_collecting_from_another_thread_works(self) -> None:
        """A scrape from a thread (prometheus_client's own HTTP server) reads the
        same samples."""
        registry = CollectorRegistry()
        supervisor = Supervisor(Config(services=[new_service("s", forever)]))
        SupervisorMetrics(registry=registry).track(supervisor)
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            text = await trio.to_thread.run_sync(generate_latest, registry)
            supervisor.stop()
        assert (
            b'trio_supervisor_service_status{service="s",supervisor="supervisor"} 1.0'
            in text
        )

    def test_missing_prometheus_client_names_the_extra(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without prometheus-client, importing trio_supervisor.metrics says which
        extra to install; trio_supervisor.health still imports."""
        for name in list(sys.modules):
            if name == "prometheus_client" or name.startswith("prometheus_client."):
                monkeypatch.setitem(sys.modules, name, None)
        for name in ("metrics", "health"):
            monkeypatch.setattr(trio_supervisor, name, getattr(trio_supervisor, name))
            monkeypatch.delitem(sys.modules, f"trio_supervisor.{name}")
        with pytest.raises(
            ImportError,
            match=r"^trio_supervisor\.metrics needs prometheus-client; install it "
            r"with `pip install trio-supervisor\[prometheus\]`$",
        ):
            importlib.import_module("trio_supervisor.metrics")
        health = importlib.import_module("trio_supervisor.health")
        with pytest.raises(
            TypeError,
            match=r"^metrics must be a trio_supervisor\.metrics\.SupervisorMetrics "
            r"or None, got 'x'$",
        ):
            health.HealthService(Supervisor(Config()), metrics="x")


class Broken(Collector):
    """A collector that fails, as a third-party one might."""

    def collect(self) -> Iterable[Metric]:
        raise RuntimeError("collector broke")


class TestEndpoint:
    """/metrics on the health server, over real loopback HTTP."""

    async def test_metrics_are_served_in_prometheus_text(self) -> None:
        """GET /metrics answers the registry in the Prometheus text format."""
        registry = CollectorRegistry()
        metrics = SupervisorMetrics(registry=registry)
        supervisor = Supervisor(Config(services=[new_service("s", forever)]))
        metrics.track(supervisor)
        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with trio.open_nursery() as nursery:
                await nursery.start(supervisor.run)
                async with (
                    serve_health(supervisor, metrics=metrics) as server,
                    httpx.AsyncClient(
                        base_url=f"http://127.0.0.1:{server.port}", trust_env=False
                    ) as http,
                ):
                    text = await http.get("/metrics")
                    openmetrics = await http.get(
                        "/metrics",
                        headers={"Accept": "application/openmetrics-text"},
                    )
                supervisor.stop()
        assert text.status_code == 200
        assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
        samples = {
            (s.name, s.labels["service"]): s.value
            for family in text_string_to_metric_families(text.text)
            for s in family.samples
            if s.name == "trio_supervisor_service_starts_total"
        }
        assert samples == {("trio_supervisor_service_starts_total", "s"): 1}
        assert openmetrics.status_code == 200
        assert openmetrics.headers["content-type"].startswith(
            "application/openmetrics-text"
        )
        assert openmetrics.text.endswith("# EOF\n")
        assert (
            'trio_supervisor_service_status{service="s",supervisor="supervisor"} 1.0\n'
            in openmetrics.text
        )

    async def test_a_failing_collector_gives_500_and_a_log_record(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A collector that raises makes /metrics answer 500, logged with its
        traceback; the server keeps serving."""
        caplog.set_level(logging.ERROR, logger="trio_supervisor")
        registry = CollectorRegistry()
        metrics = SupervisorMetrics(registry=registry)
        registry.register(Broken())
        supervisor = Supervisor(Config())
        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with (
                serve_health(supervisor, metrics=metrics) as server,
                httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{server.port}", trust_env=False
                ) as http,
            ):
                failed = await http.get("/metrics")
                after = await http.get("/status")
        assert (failed.status_code, failed.text) == (
            500,
            "internal error; see the server's log\n",
        )
        assert after.status_code == 200
        [record] = caplog.records
        assert record.getMessage() == "health server: /metrics failed"
        assert record.exc_info is not None

    async def test_a_hung_collector_gives_503_at_the_timeout(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A collector that never returns costs a scrape request_timeout, then 503;
        the server and supervisor go on."""
        caplog.set_level(logging.WARNING, logger="trio_supervisor")
        release = threading.Event()

        class Hung(Collector):
            def collect(self) -> Iterable[Metric]:
                release.wait(REAL_PEER_TIMEOUT)
                return []

        registry = CollectorRegistry()
        metrics = SupervisorMetrics(registry=registry)
        registry.register(Hung())
        supervisor = Supervisor(Config())
        with trio.fail_after(REAL_PEER_TIMEOUT):
            async with (
                serve_health(
                    supervisor, metrics=metrics, request_timeout=0.2
                ) as server,
                httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{server.port}", trust_env=False
                ) as http,
            ):
                hung = await http.get("/metrics")
                after = await http.get("/livez")
        release.set()
        assert (hung.status_code, hung.text) == (503, "metrics not collected in time\n")
        assert after.status_code == 503  # served: the supervisor is not running
        assert [r.getMessage() for r in caplog.records] == [
            "health server: metrics not collected within 0.2s"
        ]


def test_all_lists_the_public_names() -> None:
    """``__all__`` names the module's public class and constant."""
    import trio_supervisor.metrics as metrics

    public = {
        name
        for name, value in vars(metrics).items()
        if not name.startswith("_")
        and callable(value)
        and getattr(value, "__module__", None) == metrics.__name__
    }
    assert sorted(metrics.__all__) == sorted({*public, "DEFAULT_BUCKETS"})
