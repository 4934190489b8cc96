"""wfsched's Prometheus series, recorded through Ray's metrics (`ray.util.metrics`).

Every process records into Ray; the Ray agent on each node exports what that node's processes
recorded, so the same series come from every node of a cluster, and Prometheus finds the agents
through Ray's service-discovery file (README, "Operating it"). Ray prefixes application metrics
with `ray_` and adds its own labels (`WorkerId`, `NodeAddress`, `SessionName`, …), so
`wfsched_jobs_running` is scraped as `ray_wfsched_jobs_running`, one series per process: sum them.

Labels hold bounded sets only: the tenant (a user id, or `all` when
`WFSCHED_METRICS_TENANT_LABEL=false`), a job type, a status, a reason, a transport. Never a
workflow or job id. HTTP rates, errors and latency are Ray Serve's own series (`ray_serve_*`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# What the tenant label reads when it is turned off (very many tenants).
ALL_TENANTS = "all"
# Ray's agent puts this before every application metric's name.
RAY_PREFIX = "ray_"

_SECONDS_SHORT = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SECONDS_LONG = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14_400.0)


class Kind(StrEnum):
    counter = "counter"
    gauge = "gauge"
    histogram = "histogram"


@dataclass(frozen=True)
class Series:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    @property
    def scraped_name(self) -> str:
        """The name Prometheus sees (histograms add `_bucket`, `_sum` and `_count` to it)."""
        return RAY_PREFIX + self.name


CATALOGUE: tuple[Series, ...] = (
    # Admission (API replicas and the scheduler).
    Series(
        "wfsched_workflows_submitted_total",
        Kind.counter,
        "Workflows submitted: outcome accepted, or rejected with the error code as reason.",
        ("tenant", "outcome", "reason"),
    ),
    Series("wfsched_workflows_queued", Kind.gauge, "Workflows waiting for an active-user slot.", ("tenant",)),
    Series("wfsched_workflows_admitted", Kind.gauge, "Workflows admitted and not finished.", ("tenant",)),
    Series("wfsched_active_users", Kind.gauge, "Users with admitted work now."),
    Series("wfsched_active_users_limit", Kind.gauge, "Users that may have admitted work at once."),
    Series(
        "wfsched_admission_wait_seconds",
        Kind.histogram,
        "From submission to admission.",
        ("tenant",),
        (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0),
    ),
    # Jobs (the scheduler).
    Series("wfsched_jobs_running", Kind.gauge, "Jobs running now.", ("job_type",)),
    Series(
        "wfsched_job_duration_seconds",
        Kind.histogram,
        "From a job's start to its end, by its final status.",
        ("tenant", "job_type", "status"),
        _SECONDS_LONG,
    ),
    Series(
        "wfsched_job_failures_total",
        Kind.counter,
        "Jobs that failed, by the class of their error (a wfsched error code or an exception name).",
        ("job_type", "error"),
    ),
    Series(
        "wfsched_scheduling_overhead_seconds",
        Kind.histogram,
        "From the moment a job may start (admitted, predecessors done) to its start in a lane.",
        ("job_type",),
        _SECONDS_SHORT,
    ),
    Series(
        "wfsched_job_progress_stalled_seconds",
        Kind.gauge,
        "The longest any running job of the type has gone without progress (or since its start).",
        ("job_type",),
    ),
    Series(
        "wfsched_scheduler_heartbeat_timestamp_seconds",
        Kind.gauge,
        "When the scheduler last completed its periodic round (Unix time); stale means unhealthy.",
    ),
    # Segmentation (the job runners).
    Series("wfsched_tiles_segmented_total", Kind.counter, "Tiles through the model.", ("tenant",)),
    Series(
        "wfsched_tile_seconds",
        Kind.histogram,
        "A segmentation task's wall time per tile it held.",
        ("accelerator",),
        _SECONDS_SHORT,
    ),
    Series(
        "wfsched_accelerator_seconds_total",
        Kind.counter,
        "GPU-seconds held by segmentation tasks (accelerator gpu), or worker-seconds on CPUs (cpu).",
        ("tenant", "accelerator"),
    ),
    # Fair share of the accelerators (the tile-batch dispatcher).
    Series(
        "wfsched_batch_slots",
        Kind.gauge,
        "Segmentation tasks the cluster runs at once: its GPUs / GPUs per task, or its CPUs without GPUs.",
    ),
    Series("wfsched_batch_slots_held", Kind.gauge, "Slots held by running segmentation batches.", ("tenant",)),
    Series("wfsched_batches_waiting", Kind.gauge, "Segmentation batches waiting for a slot.", ("tenant",)),
    # Live progress (API replicas).
    Series("wfsched_open_streams", Kind.gauge, "Open event streams of this replica.", ("transport",)),
    Series(
        "wfsched_event_delivery_lag_seconds",
        Kind.histogram,
        "From an event's time to its write on a stream.",
        ("transport",),
        _SECONDS_SHORT,
    ),
)
SERIES: Mapping[str, Series] = {series.name: series for series in CATALOGUE}


class Meter:
    """Records the catalogue's series in this process; Ray's metric objects are made on first use.

    Gauges set through `set_each` are zeroed for label values that no longer appear, so a tenant
    whose queue emptied reads 0 rather than its last value.
    """

    def __init__(self, tenant_label: bool = True, make_metric: Callable[[Series], Any] | None = None) -> None:
        self.tenant_label = tenant_label
        self._make_metric = make_metric or _ray_metric
        self._metrics: dict[str, Any] = {}
        self._last_each: dict[str, set[tuple[str, ...]]] = {}

    def tenant(self, user_id: str) -> str:
        return user_id if self.tenant_label else ALL_TENANTS

    def per_tenant(self, per_user: Mapping[str, float]) -> dict[tuple[str, ...], float]:
        """Counts per user as counts per tenant label, for `set_each` (all users are one tenant
        with the label off)."""
        counts: dict[tuple[str, ...], float] = {}
        for user_id, count in per_user.items():
            key = (self.tenant(user_id),)
            counts[key] = counts.get(key, 0) + count
        return counts

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        if value > 0:
            self._metric(name, labels).inc(value, tags=labels or None)

    def set(self, name: str, value: float, **labels: str) -> None:
        self._metric(name, labels).set(value, tags=labels or None)

    def observe(self, name: str, value: float, **labels: str) -> None:
        self._metric(name, labels).observe(max(value, 0.0), tags=labels or None)

    def set_each(self, name: str, values: Mapping[tuple[str, ...], float]) -> None:
        """Set a gauge for each tuple of label values (in the series' label order); zero the rest."""
        labels = SERIES[name].labels
        for key in self._last_each.get(name, set()) - set(values):
            self.set(name, 0.0, **dict(zip(labels, key, strict=True)))
        for key, value in values.items():
            self.set(name, value, **dict(zip(labels, key, strict=True)))
        self._last_each[name] = set(values)

    def _metric(self, name: str, labels: Mapping[str, str]) -> Any:
        series = SERIES[name]
        if set(labels) != set(series.labels):
            raise ValueError(f"{name} takes labels {series.labels}, got {tuple(labels)}")
        metric = self._metrics.get(name)
        if metric is None:
            metric = self._metrics[name] = self._make_metric(series)
        return metric


def _ray_metric(series: Series) -> Any:
    from ray.util import metrics  # imported here: the catalogue is read where Ray is not (docs, tests)

    if series.kind == Kind.counter:
        return metrics.Counter(series.name, series.help, tag_keys=series.labels)
    if series.kind == Kind.gauge:
        return metrics.Gauge(series.name, series.help, tag_keys=series.labels)
    return metrics.Histogram(series.name, series.help, boundaries=list(series.buckets), tag_keys=series.labels)
