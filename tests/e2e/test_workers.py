"""`segment_tiles` workers cannot be poisoned: a cancel or an error at any moment of a batch's life
(first model import, model load, inference) leaves every worker able to run the next tenant's batch.

Each worker is reused between batches, so one left broken (say, a half-imported InstanSeg after a
cancel landed mid-import) would fail every later batch of every user that lands on it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import ray
from ray.exceptions import RayTaskError, TaskCancelledError

from tests.support.service import Api, ray_init_options
from tests.support.slides import sample_crop
from wfsched.cli.fetch import fetch_assets
from wfsched.config import Settings
from wfsched.imaging.models import resolve_model
from wfsched.imaging.pipeline import plan_segmentation
from wfsched.imaging.segment import SegmentSpec
from wfsched.imaging.segment_task import segment_tiles
from wfsched.imaging.slide import inspect_slide
from wfsched.imaging.tiling import Tile

# Dense epidermis of cmu_small_region.svs (as in test_imaging): a few hundred nuclei.
# On a worker that has imported wfsched (and torch) but not yet InstanSeg, a batch imports InstanSeg
# (~1-2 s here), loads the model, then segments: these cancel in each of those phases and after.
CANCEL_AFTER_S = (0.0, 0.05, 0.3, 1.0, 2.5)


@ray.remote
def start_worker() -> int:
    """Brings a worker up to the moment a first batch would start (the task module imported)."""
    import wfsched.imaging.segment  # noqa: F401

    return os.getpid()


def own_runtime_env(name: str) -> dict[str, Any]:
    """A runtime env of its own gives a fresh worker (Ray pools workers per runtime env); the tasks
    after it land on that same worker while it lives and is idle."""
    env_vars = {**ray_init_options()["runtime_env"]["env_vars"], "WFSCHED_TEST_WORKER": name}
    return {"env_vars": env_vars}


@pytest.fixture(scope="module")
def crop(service_settings: Settings) -> Path:
    return sample_crop(service_settings.data_roots[0] / "workers")


@pytest.fixture(scope="module")
def batch(crop: Path) -> tuple[SegmentSpec, list[Tile]]:
    model_path = resolve_model("brightfield_nuclei", Settings().cache_dir)
    plan = plan_segmentation(inspect_slide(crop), model_path, None, tile_px=256, halo_px=64, target="nuclei")
    return plan.spec, plan.tiles


def outcome(ref: ray.ObjectRef[Any], timeout_s: float = 300) -> str:
    try:
        ray.get(ref, timeout=timeout_s)
    except TaskCancelledError:
        return "cancelled"
    except RayTaskError as error:
        return f"failed: {type(error.cause).__name__}: {error.cause}"
    return "finished"


@pytest.mark.slow
def test_cancels_at_any_moment_leave_workers_serving_the_next_tenant(
    service_settings: Settings,
    batch: tuple[SegmentSpec, list[Tile]],
    crop: Path,
    make_user: Callable[[str], Api],
) -> None:
    spec, tiles = batch
    num_gpus = service_settings.num_gpus_per_task
    outcomes: dict[float, tuple[str, str]] = {}
    for attempt, delay_s in enumerate(CANCEL_AFTER_S):
        runtime_env = own_runtime_env(f"cancel-{attempt}")
        ray.get(start_worker.options(num_gpus=num_gpus, runtime_env=runtime_env).remote(), timeout=300)
        fresh = segment_tiles.options(num_gpus=num_gpus, runtime_env=runtime_env)
        cancelled = fresh.remote(spec, tiles[:2])
        time.sleep(delay_s)
        ray.cancel(cancelled)
        first = outcome(cancelled)
        outcomes[delay_s] = (first, outcome(fresh.remote(spec, tiles[:1])))
    print(f"\ncancel after (s) → (cancelled batch, next batch): {outcomes}")
    assert all(first in ("cancelled", "finished") for first, _ in outcomes.values()), outcomes
    assert all(then == "finished" for _, then in outcomes.values()), outcomes

    # Enough batches at once to land on every worker there is; each must run to the end.
    task = segment_tiles.options(num_gpus=num_gpus)
    after = [outcome(ref) for ref in [task.remote(spec, [tile]) for tile in tiles * 2]]
    assert after == ["finished"] * len(after), after

    # And another user's whole segmentation job, through the service.
    api = make_user("after-cancels")
    job = {
        "job_id": "cells",
        "job_type": "cell_segmentation",
        "image_path": str(crop),
        "params": {"tile_size_px": 256, "halo_px": 64},
    }
    workflow = api.wait(api.submit([job])["workflow_id"], timeout_s=600)
    assert workflow["status"] == "succeeded", workflow["jobs"][0]


@pytest.mark.parametrize(
    ("case", "expected"),
    [("missing model", "failed: ModelNotFoundError"), ("not a tile", "failed: AttributeError")],
)
def test_a_batch_failed_by_its_input_keeps_its_worker_any_other_failure_retires_it(
    service_settings: Settings, batch: tuple[SegmentSpec, list[Tile]], case: str, expected: str
) -> None:
    spec, tiles = batch
    runtime_env = own_runtime_env(f"failure-{case}")
    options = {"num_gpus": service_settings.num_gpus_per_task, "runtime_env": runtime_env}
    before = ray.get(start_worker.options(**options).remote(), timeout=300)
    if case == "missing model":
        spec = dataclasses.replace(spec, model_path=str(Path(spec.model_path).with_name("absent.pt")))
        failed = segment_tiles.options(**options).remote(spec, tiles[:1])
    else:  # a bug: nothing a user sent makes a batch hold something other than tiles
        failed = segment_tiles.options(**options).remote(spec, cast(list[Tile], [None]))
    assert outcome(failed).startswith(expected)
    after = ray.get(start_worker.options(**options).remote(), timeout=300)
    assert (after == before) == (case == "missing model"), (before, after)
    assert outcome(segment_tiles.options(**options).remote(batch[0], tiles[:1])) == "finished"


@pytest.mark.slow
def test_a_cancelled_segmentation_frees_every_slot_for_the_next_tenant(
    service_settings: Settings, make_user: Callable[[str], Api], record_property: Callable[[str, object], None]
) -> None:
    sample = fetch_assets(Settings().cache_dir).sample_slide
    slide = Path(shutil.copy(sample, service_settings.data_roots[0] / sample.name))
    api = make_user("cancelled")
    # Two tiles per batch, four batches in flight: both slots busy for the whole run.
    params = {"tile_size_px": 512, "batch_size": 2, "max_batches_in_flight": 4}
    job = {"job_id": "cells", "job_type": "cell_segmentation", "image_path": str(slide), "params": params}
    workflow_id = api.submit([job])["workflow_id"]
    deadline_s = time.monotonic() + 600
    while api.request("GET", f"/api/progress/{workflow_id}").json()["jobs"][0]["done"] < 2:
        assert time.monotonic() < deadline_s, "the segmentation never got going"
        time.sleep(0.2)

    def started_at() -> float:
        return time.time()

    # The next tenant's tasks ask for the same share of the GPU as a batch: they start only once
    # the cancelled batches have let go of every slot.
    probe = ray.remote(started_at).options(num_gpus=service_settings.num_gpus_per_task)
    slots = round(1 / service_settings.num_gpus_per_task)
    cancelled_at = time.time()
    assert api.request("POST", f"/api/workflows/{workflow_id}/cancel").status_code == 200
    starts = ray.get([probe.remote() for _ in range(slots)], timeout=300)
    job_stopped = api.wait(workflow_id, timeout_s=300)
    stopped_at = time.time()
    assert job_stopped["status"] == "cancelled"
    freed_s = max(starts) - cancelled_at
    print(f"\ncancel → every slot free and the next tenant's tasks started: {freed_s:.2f} s")
    print(f"cancel → job seen cancelled: {stopped_at - cancelled_at:.2f} s (polled)")
    record_property("cancel_to_slots_free_s", round(freed_s, 3))
    # Generous: the grace period, a force-cancel, and a busy 2-core machine starting a worker.
    assert freed_s < service_settings.cancel_grace_s + 60
