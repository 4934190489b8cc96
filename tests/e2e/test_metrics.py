"""wfsched's series in a real Prometheus, scraped from the test Ray's metrics agent.

Two tenants run a small workflow each (one with a real segmentation, one failing job, one
refused submission, one live stream); Prometheus then holds the series with the right values
per tenant, no label value is an id, the alert rules evaluate, and every panel of the Grafana
dashboard parses and returns data.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import base_url
from tests.support.dashboard import panel_queries
from tests.support.prometheus import PrometheusServer, running_prometheus
from tests.support.service import ROOT, Api, job_spec, metrics_port
from tests.support.slides import sample_crop
from tests.support.streams import events_of, read_stream
from wfsched.config import Settings
from wfsched.observe.metrics import CATALOGUE, Kind

ALERTS = ROOT / "deployments" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deployments" / "grafana" / "wfsched.json"
# Labels Ray adds to every application series, beside the catalogue's own.
RAY_LABELS = {"__name__", "instance", "job", "Component", "NodeAddress", "SessionName", "Version", "WorkerId"} | {
    "otel_scope_name",
    "otel_scope_schema_url",
    "otel_scope_version",
}
# Panels over series that only real GPUs produce (Ray reads them from the driver); logical GPUs have none.
NEEDS_PHYSICAL_GPU = ("ray_node_gpus_utilization", "ray_node_gram_used", "ray_node_gram_available")
# Ray reports every second here (tests/support/service.py); Prometheus scrapes every second.
SETTLE_S = 60.0


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    config = f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ray
    static_configs:
      - targets: ["127.0.0.1:{metrics_port()}"]
"""
    with running_prometheus(config, [ALERTS], tmp_path_factory.mktemp("prometheus")) as server:
        yield server


@pytest.fixture(scope="module")
def ran(
    prometheus: PrometheusServer, service_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Two tenants' workflows, run to the end: what the series must show."""
    data_dir = service_settings.data_roots[0]
    crop = sample_crop(data_dir / "metrics", (512, 512))
    lab, clinic = (Api(base_url(service_settings), f"{name}-{uuid.uuid4().hex[:8]}") for name in ("lab", "clinic"))
    lab_jobs = [
        job_spec("warm", data_dir, duration_s=1.5, steps=3),
        job_spec("breaks", data_dir, "b2", fail=True),
        {
            "job_id": "cells",
            "job_type": "cell_segmentation",
            "image_path": str(crop),
            "branch": "b3",
            "params": {"tile_size_px": 256, "halo_px": 32},
        },
    ]
    lab_workflow = lab.submit(lab_jobs)["workflow_id"]
    _, messages = read_stream(lab, f"/api/progress/{lab_workflow}/stream")  # to its end: lag measured
    clinic_workflow = clinic.submit([job_spec("only", data_dir, duration_s=0.2)])["workflow_id"]
    refused = clinic.request(
        "POST", "/api/workflows", json={"name": "x", "jobs": [job_spec("x", data_dir, "m", None, "nope")]}
    )
    assert refused.status_code == 422
    finished = {lab.user: lab.wait(lab_workflow, timeout_s=300), clinic.user: clinic.wait(clinic_workflow)}
    cells = next(j for j in finished[lab.user]["jobs"] if j["job_id"] == "cells")
    assert cells["status"] == "succeeded", cells
    return {
        "lab": lab.user,
        "clinic": clinic.user,
        "workflows": finished,
        "tiles": cells["result"]["tiles_segmented"] - cells["result"]["tiles_resumed_from_checkpoint"],
        "events": len(events_of(messages)),
    }


def value(prometheus: PrometheusServer, promql: str, expected: float | None = None, at_least: float = 0.0) -> float:
    """The query's single value, waiting for the scrapes to catch up to `expected` (or `at_least`)."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        samples = prometheus.query(promql)
        got = float(samples[0]["value"][1]) if len(samples) == 1 else None
        if got is not None and got >= at_least and (expected is None or got == pytest.approx(expected)):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{promql} gave {samples}, expected {expected} (at least {at_least})")
        time.sleep(1.0)


def test_jobs_counted_equal_jobs_run_per_tenant(prometheus: PrometheusServer, ran: dict[str, Any]) -> None:
    lab, clinic = ran["lab"], ran["clinic"]
    durations = "ray_wfsched_job_duration_seconds_count"
    assert value(prometheus, f'sum({durations}{{tenant="{lab}"}})', 3) == 3
    assert value(prometheus, f'sum({durations}{{tenant="{lab}",status="failed"}})', 1) == 1
    assert value(prometheus, f'sum({durations}{{tenant="{clinic}",status="succeeded"}})', 1) == 1
    value(prometheus, 'sum(ray_wfsched_job_failures_total{job_type="sleep",error="job_failed"})', at_least=1)
    assert value(prometheus, f'sum(ray_wfsched_admission_wait_seconds_count{{tenant="{lab}"}})', 1) == 1
    value(prometheus, 'sum(ray_wfsched_scheduling_overhead_seconds_count{job_type="sleep"})', at_least=3)


def test_submissions_accepted_and_rejected_by_reason(prometheus: PrometheusServer, ran: dict[str, Any]) -> None:
    submitted = "ray_wfsched_workflows_submitted_total"
    clinic = ran["clinic"]
    assert value(prometheus, f'sum({submitted}{{tenant="{clinic}",outcome="accepted"}})', 1) == 1
    assert value(prometheus, f'sum({submitted}{{tenant="{clinic}",outcome="rejected",reason="invalid_workflow"}})', 1)


def test_tiles_and_accelerator_seconds_per_tenant(prometheus: PrometheusServer, ran: dict[str, Any]) -> None:
    lab = ran["lab"]
    assert ran["tiles"] > 0
    tiles = value(prometheus, f'sum(ray_wfsched_tiles_segmented_total{{tenant="{lab}"}})', ran["tiles"])
    assert tiles == ran["tiles"]
    # The test service's tasks hold half a logical GPU each: GPU-seconds, not worker-seconds.
    assert value(prometheus, f'sum(ray_wfsched_accelerator_seconds_total{{tenant="{lab}",accelerator="gpu"}})') > 0
    value(prometheus, 'sum(ray_wfsched_tile_seconds_count{accelerator="gpu"})', at_least=tiles)
    assert not prometheus.query(f'ray_wfsched_tiles_segmented_total{{tenant="{ran["clinic"]}"}}')


def test_streams_delivery_lag_gauges_and_heartbeat(prometheus: PrometheusServer, ran: dict[str, Any]) -> None:
    value(prometheus, 'sum(ray_wfsched_event_delivery_lag_seconds_count{transport="sse"})', at_least=ran["events"])
    assert prometheus.query_until('ray_wfsched_open_streams{transport="sse"}')
    assert value(prometheus, f'sum(ray_wfsched_workflows_admitted{{tenant="{ran["lab"]}"}})', 0) == 0
    assert value(prometheus, "max(ray_wfsched_active_users_limit)") == 3
    assert value(prometheus, "time() - max(ray_wfsched_scheduler_heartbeat_timestamp_seconds)") < 30


def test_every_catalogue_series_exists_and_no_label_holds_an_id(
    prometheus: PrometheusServer, ran: dict[str, Any]
) -> None:
    ids: set[str] = set()  # workflow and job ids; tenants (user ids) are label values on purpose
    for workflow in ran["workflows"].values():
        ids |= {workflow["workflow_id"], *(job["job_id"] for job in workflow["jobs"])}
    for series in CATALOGUE:
        name = series.scraped_name + ("_count" if series.kind == Kind.histogram else "")
        found = prometheus.query_until(f"{name}", timeout_s=SETTLE_S)
        for sample in found:
            labels = sample["metric"]
            assert set(labels) <= RAY_LABELS | set(series.labels) | {"le"}, (name, labels)
            assert not ids & set(labels.values()), (name, labels)


def test_the_alert_rules_load_and_evaluate(prometheus: PrometheusServer, ran: dict[str, Any]) -> None:
    groups = httpx.get(prometheus.url + "/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert rules and all(rule["health"] == "ok" for rule in rules), [r for r in rules if r["health"] != "ok"]


def test_every_dashboard_panel_parses_and_returns_data(prometheus: PrometheusServer, ran: dict[str, Any]) -> None:
    empty = []
    for title, expr in panel_queries(DASHBOARD):
        if not _settled(prometheus, expr) and not any(name in expr for name in NEEDS_PHYSICAL_GPU):
            empty.append((title, expr))
    assert not empty, f"panels without data: {empty}"


def _settled(prometheus: PrometheusServer, expr: str, timeout_s: float = 20.0) -> bool:
    """Whether the expression returns data within `timeout_s` (a PrometheusError if it does not parse)."""
    deadline = time.monotonic() + timeout_s
    while not prometheus.query(expr):
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)
    return True
