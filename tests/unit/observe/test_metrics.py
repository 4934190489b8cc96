"""The metrics catalogue's rules, and the Meter's labels, tenant setting and gauge zeroing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from wfsched.observe.metrics import ALL_TENANTS, CATALOGUE, Kind, Meter, Series

ROOT = Path(__file__).resolve().parents[3]
# Labels whose values are bounded sets; an id (workflow, job, request) never becomes a label.
BOUNDED_LABELS = {"tenant", "outcome", "reason", "job_type", "status", "error", "accelerator", "transport"}


class Recorded:
    """Stands in for one of Ray's metric objects: what was recorded, by label values."""

    def __init__(self, series: Series) -> None:
        self.series = series
        self.values: dict[tuple[tuple[str, str], ...], list[float]] = {}

    def _add(self, value: float, tags: dict[str, str] | None) -> None:
        self.values.setdefault(tuple(sorted((tags or {}).items())), []).append(value)

    inc = set = observe = _add


@pytest.fixture
def recorded() -> dict[str, Recorded]:
    return {}


@pytest.fixture
def meter(recorded: dict[str, Recorded]) -> Meter:
    def make(series: Series) -> Any:
        recorded[series.name] = Recorded(series)
        return recorded[series.name]

    return Meter(make_metric=make)


def test_the_catalogue_names_carry_prefix_and_units_and_labels_are_bounded() -> None:
    for series in CATALOGUE:
        assert series.name.startswith("wfsched_") and series.scraped_name == "ray_" + series.name
        assert set(series.labels) <= BOUNDED_LABELS, series.name
        if series.kind == Kind.counter:
            assert series.name.endswith("_total")
        if series.kind == Kind.histogram:
            assert series.name.endswith("_seconds") and list(series.buckets) == sorted(series.buckets)
    assert len({series.name for series in CATALOGUE}) == len(CATALOGUE)


def test_the_help_texts_are_ascii() -> None:
    # Ray refuses any other description when it makes the metric (in the process that records it).
    assert [series.name for series in CATALOGUE if not series.help.isascii()] == []


def test_labels_must_be_the_series_own(meter: Meter) -> None:
    with pytest.raises(ValueError, match="takes labels"):
        meter.inc("wfsched_tiles_segmented_total", 1, tenant="a", workflow_id="w")


def test_the_tenant_label_can_be_turned_off() -> None:
    assert Meter().tenant("alice") == "alice"
    assert Meter(tenant_label=False).tenant("alice") == ALL_TENANTS
    per_user = {"alice": 2, "bob": 1}
    assert Meter().per_tenant(per_user) == {("alice",): 2, ("bob",): 1}
    assert Meter(tenant_label=False).per_tenant(per_user) == {(ALL_TENANTS,): 3}  # summed, not overwritten


def test_gauges_set_each_zero_the_label_values_that_went_away(meter: Meter, recorded: dict[str, Recorded]) -> None:
    meter.set_each("wfsched_workflows_queued", {("alice",): 2, ("bob",): 1})
    meter.set_each("wfsched_workflows_queued", {("bob",): 3})
    values = recorded["wfsched_workflows_queued"].values
    assert values[(("tenant", "alice"),)] == [2, 0] and values[(("tenant", "bob"),)] == [1, 3]


def test_counters_skip_nothing_to_add_and_histograms_clip_negative_times(
    meter: Meter, recorded: dict[str, Recorded]
) -> None:
    meter.inc("wfsched_tiles_segmented_total", 0, tenant="a")
    assert "wfsched_tiles_segmented_total" not in recorded
    meter.observe("wfsched_scheduling_overhead_seconds", -0.002, job_type="t")  # clocks of two processes
    assert recorded["wfsched_scheduling_overhead_seconds"].values == {(("job_type", "t"),): [0.0]}


def test_the_readme_lists_every_series_and_alert() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    operating = readme[readme.index("## Operating it") :]
    missing = [
        series.name for series in CATALOGUE if f"`{series.name}`" not in operating and series.name not in operating
    ]
    alerts = re.findall(r"- alert: (\w+)", (ROOT / "deployments" / "prometheus" / "alerts.yml").read_text())
    assert alerts
    missing += [alert for alert in alerts if f"`{alert}`" not in operating]
    assert not missing, f"README, 'Operating it', does not name: {missing}"
