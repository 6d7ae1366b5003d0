"""Prometheus metrics of supervised services (the optional ``prometheus`` extra).

Needs ``prometheus-client``: ``pip install trio-supervisor[prometheus]``.

One `SupervisorMetrics` per registry collects the metrics of every
supervisor it tracks; each series carries the labels ``supervisor`` (the
supervisor's name) and ``service`` (the service's name):

``trio_supervisor_service_starts_total``
    Runs started (each IDLE update: the supervisor scheduled a run).
``trio_supervisor_service_restarts_total``
    Runs started after an earlier run of the same service ended, within one
    ``run()`` of the supervisor.
``trio_supervisor_service_failures_total``
    Runs that ended in failure, with the label ``status``: ``error`` or
    ``panic``.
``trio_supervisor_service_status``
    The service's current status as the integer of `Status`
    (0 idle, 1 running, 2 stopped, 3 error, 4 panic).
``trio_supervisor_service_run_duration_seconds``
    Histogram of the durations of ended runs, from the run's start (its IDLE
    update) to its end, on the supervisor's clock.
``trio_supervisor_phase``
    The supervisor's `Phase` as an integer (labels:
    ``supervisor`` only).

For example:

    from trio_supervisor.health import serve_health
    from trio_supervisor.metrics import SupervisorMetrics

    metrics = SupervisorMetrics()  # registers in prometheus_client.REGISTRY
    metrics.track(supervisor)
    async with serve_health(supervisor, port=8080, metrics=metrics):
        await supervisor.run()
"""

from __future__ import annotations

import itertools
import math
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import final

try:
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.exposition import choose_encoder
    from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry
except ImportError as exc:  # pragma: no cover - exercised with a hidden module
    raise ImportError(
        "trio_supervisor.metrics needs prometheus-client; install it with "
        "`pip install trio-supervisor[prometheus]`",
        name=exc.name,
    ) from exc

from ._status import Status, StatusUpdate
from ._supervisor import Supervisor

__all__ = ["DEFAULT_BUCKETS", "SupervisorMetrics"]

DEFAULT_BUCKETS: tuple[float, ...] = (
    0.01,
    0.1,
    1.0,
    10.0,
    60.0,
    300.0,
    1800.0,
    3600.0,
    21600.0,
    86400.0,
)
"""Upper bounds, in seconds, of the run-duration histogram's buckets (``+Inf``
is added): from 10 ms to a day, as services run from a crash loop to for ever."""

_NAMESPACE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_FAILURES = (Status.ERROR, Status.PANIC)
_SERVICE_LABELS = ("supervisor", "service")


@dataclass
class _Series:
    """The counters and histogram of one service of one supervisor."""

    bucket_counts: list[int]
    starts: int = 0
    restarts: int = 0
    failures: dict[Status, int] = field(
        default_factory=lambda: dict.fromkeys(_FAILURES, 0)
    )
    duration_sum: float = 0.0
    duration_count: int = 0


@dataclass
class _Tracked:
    """What the observer of one supervisor remembers between updates."""

    supervisor: Supervisor
    unsubscribe: Callable[[], None] | None = None
    run: int = 0
    last: dict[int, StatusUpdate] = field(default_factory=dict)
    started_at: dict[int, float] = field(default_factory=dict)


@final
class SupervisorMetrics(Collector):
    """Prometheus metrics of the supervisors it tracks, registered in a registry.

    Every status update reaches it synchronously, never coalesced, so the
    counters miss none. Track a supervisor before its ``run()`` to count its
    first starts too:

        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry()
        metrics = SupervisorMetrics(registry=registry)
        untrack = metrics.track(supervisor)
        ...
        print(generate_latest(registry).decode())

    Args:
        registry: Where the metrics are registered; by default
            ``prometheus_client.REGISTRY``. Inject a fresh
            ``CollectorRegistry()`` in tests.
        namespace: The prefix of every metric name.
        buckets: Upper bounds, in seconds, of the run-duration histogram's
            buckets, increasing; ``+Inf`` is added.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: ``namespace`` is not a valid metric name prefix, the
            buckets are not increasing, or the registry already has these
            metric names.
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry = REGISTRY,
        namespace: str = "trio_supervisor",
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        if not isinstance(registry, CollectorRegistry):
            raise TypeError(
                f"registry must be a prometheus_client.CollectorRegistry, "
                f"got {registry!r}"
            )
        if not isinstance(namespace, str):
            raise TypeError(f"namespace must be a str, got {namespace!r}")
        if not _NAMESPACE.match(namespace):
            raise ValueError(
                f"namespace must be a valid metric name prefix, got {namespace!r}"
            )
        self._buckets = _check_buckets(buckets)
        self._prefix = f"{namespace}_"
        self._registry = registry
        self._lock = threading.Lock()
        self._tracked: dict[str, _Tracked] = {}
        self._series: dict[tuple[str, str], _Series] = {}
        registry.register(self)

    def __repr__(self) -> str:
        return f"<SupervisorMetrics tracking {sorted(self._tracked)}>"

    @property
    def registry(self) -> CollectorRegistry:
        """The registry the metrics are registered in (what ``/metrics`` serves)."""
        return self._registry

    def track(self, supervisor: Supervisor) -> Callable[[], None]:
        """Count every status update of ``supervisor`` from now on.

        Its series are labelled with its name, which must differ from the
        names of the other supervisors tracked here:

            untrack = metrics.track(supervisor)
            ...
            untrack()  # stops counting; the series stay

        Returns:
            A function that stops tracking ``supervisor`` (its series stay).

        Raises:
            TypeError: ``supervisor`` is not a `Supervisor`.
            ValueError: A tracked supervisor already has its name.
        """
        if not isinstance(supervisor, Supervisor):
            raise TypeError(
                f"supervisor must be a trio_supervisor.Supervisor, got {supervisor!r}"
            )
        name = supervisor.name
        with self._lock:
            if name in self._tracked:
                raise ValueError(
                    f"supervisor: a supervisor named {name!r} is tracked already; "
                    "give each tracked supervisor a distinct Config.name"
                )
            tracked = _Tracked(supervisor)
            # Updates before now are not counted; remember them so the next
            # start of a service that has ended counts as a restart.
            tracked.run = supervisor._runs
            for update in supervisor.statuses():
                tracked.last[update.service_id] = update
                self._series_of(name, update.service_name)
            self._tracked[name] = tracked
        tracked.unsubscribe = supervisor._observe(
            lambda update: self._observe(tracked, update)
        )
        return lambda: self._untrack(name, tracked)

    def _untrack(self, name: str, tracked: _Tracked) -> None:
        with self._lock:
            if self._tracked.get(name) is not tracked:
                return
            del self._tracked[name]
        if tracked.unsubscribe is not None:
            tracked.unsubscribe()
            tracked.unsubscribe = None

    def close(self) -> None:
        """Stop tracking every supervisor and unregister from the registry.

        For example:

            metrics.close()  # the registry no longer has these metrics
        """
        for name, tracked in list(self._tracked.items()):
            self._untrack(name, tracked)
        self._registry.unregister(self)

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The registry's metrics in the format ``accept`` (an HTTP ``Accept``
        header) asks for: OpenMetrics or, by default, Prometheus text.

        For example:

            body, content_type = metrics.exposition("application/openmetrics-text")

        Returns:
            The body and its ``Content-Type``.
        """
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self._registry), content_type

    # --- counting -------------------------------------------------------------

    def _series_of(self, supervisor_name: str, service_name: str) -> _Series:
        key = (supervisor_name, service_name)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series([0] * len(self._buckets))
        return series

    def _observe(self, tracked: _Tracked, update: StatusUpdate) -> None:
        supervisor = tracked.supervisor
        with self._lock:
            # A service's first start in a new run() is no restart.
            if supervisor._runs != tracked.run:
                tracked.run = supervisor._runs
                tracked.last.clear()
                tracked.started_at.clear()
            service_id = update.service_id
            previous = tracked.last.get(service_id)
            tracked.last[service_id] = update
            series = self._series_of(supervisor.name, update.service_name)
            status = update.status
            if status is Status.IDLE:
                series.starts += 1
                if previous is not None and not previous.status.is_alive:
                    series.restarts += 1
                tracked.started_at[service_id] = update.time
            elif not status.is_alive:
                if status in _FAILURES:
                    series.failures[status] += 1
                started = tracked.started_at.pop(service_id, None)
                if started is not None:
                    self._observe_duration(series, update.time - started)

    def _observe_duration(self, series: _Series, duration: float) -> None:
        series.duration_sum += duration
        series.duration_count += 1
        for index, bound in enumerate(self._buckets):
            if duration <= bound:
                series.bucket_counts[index] += 1
                break

    # --- collecting -----------------------------------------------------------

    def _families(
        self,
    ) -> tuple[
        CounterMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        GaugeMetricFamily,
    ]:
        prefix = self._prefix
        return (
            CounterMetricFamily(
                f"{prefix}service_starts",
                "Runs of the service started by its supervisor.",
                labels=_SERVICE_LABELS,
            ),
            CounterMetricFamily(
                f"{prefix}service_restarts",
                "Runs of the service started after an earlier run ended.",
                labels=_SERVICE_LABELS,
            ),
            CounterMetricFamily(
                f"{prefix}service_failures",
                "Runs of the service that ended in failure, by status.",
                labels=(*_SERVICE_LABELS, "status"),
            ),
            GaugeMetricFamily(
                f"{prefix}service_status",
                "Current status: 0 idle, 1 running, 2 stopped, 3 error, 4 panic.",
                labels=_SERVICE_LABELS,
            ),
            HistogramMetricFamily(
                f"{prefix}service_run_duration_seconds",
                "Durations of the service's ended runs, start to end.",
                labels=_SERVICE_LABELS,
            ),
            GaugeMetricFamily(
                f"{prefix}phase",
                "Supervisor phase: 0 idle, 1 starting, 2 running, 3 stopping, "
                "4 stopped.",
                labels=("supervisor",),
            ),
        )

    def describe(self) -> Iterable[Metric]:
        """The metric families without samples, for the registry's name checks."""
        return self._families()

    def collect(self) -> Iterable[Metric]:
        """The current samples of every tracked supervisor (called by the registry).

        Safe from another thread, e.g. ``prometheus_client.start_http_server``.
        """
        starts, restarts, failures, status, durations, phase = self._families()
        bounds = [repr(bound) for bound in self._buckets]
        with self._lock:
            for (supervisor_name, service_name), series in self._series.items():
                labels = [supervisor_name, service_name]
                starts.add_metric(labels, series.starts)
                restarts.add_metric(labels, series.restarts)
                for failure, count in series.failures.items():
                    failures.add_metric([*labels, failure.name.lower()], count)
                cumulative = 0
                buckets: list[tuple[str, float]] = []
                for bound, count in zip(bounds, series.bucket_counts, strict=True):
                    cumulative += count
                    buckets.append((bound, cumulative))
                buckets.append(("+Inf", series.duration_count))
                durations.add_metric(labels, buckets, series.duration_sum)
            for name, tracked in self._tracked.items():
                supervisor = tracked.supervisor
                phase.add_metric([name], int(supervisor.phase))
                for update in supervisor.statuses():
                    status.add_metric([name, update.service_name], int(update.status))
        return [starts, restarts, failures, status, durations, phase]


def _check_buckets(buckets: object) -> tuple[float, ...]:
    if isinstance(buckets, (str, bytes)) or not isinstance(buckets, Sequence):
        raise TypeError(f"buckets must be a sequence of numbers, got {buckets!r}")
    result: list[float] = []
    for bound in buckets:
        if not isinstance(bound, (int, float)) or isinstance(bound, bool):
            raise TypeError(f"buckets must be a sequence of numbers, got {buckets!r}")
        result.append(float(bound))
    if result and math.isinf(result[-1]):
        result.pop()  # +Inf is always added
    if (
        not result
        or any(math.isnan(b) or math.isinf(b) for b in result)
        or any(b <= a for a, b in itertools.pairwise(result))
    ):
        raise ValueError(
            f"buckets must be finite, increasing numbers (at least one), "
            f"got {buckets!r}"
        )
    return tuple(result)
