"""The fan-out and stitch, driven in-process without Ray, on a real crop with the real model."""

from __future__ import annotations

import json
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
import zarr

from wfsched.exceptions import JobCancelledError
from wfsched.imaging.checkpoint import TileCheckpoints
from wfsched.imaging.pipeline import (
    CHECKPOINT_DIR,
    FanOut,
    SegmentationPlan,
    Submitted,
    plan_segmentation,
    run_batches,
    run_in_process,
    segment_slide,
)
from wfsched.imaging.segment import SegmentSpec
from wfsched.imaging.slide import inspect_slide
from wfsched.imaging.tiling import Tile


def _plan(real_crop: Path, nuclei_model: Path) -> SegmentationPlan:
    return plan_segmentation(inspect_slide(real_crop), nuclei_model, None, tile_px=512, halo_px=64, target="nuclei")


def test_outputs_agree_with_each_other(real_crop: Path, nuclei_model: Path, tmp_path: Path) -> None:
    plan = _plan(real_crop, nuclei_model)
    progress: list[tuple[int, int]] = []
    fan_out = FanOut(batch_size=2, max_in_flight=2, on_progress=lambda done, total: progress.append((done, total)))
    summary = segment_slide(plan, run_in_process, tmp_path, fan_out)
    assert progress[0] == (0, len(plan.tiles)) and progress[-1] == (len(plan.tiles), len(plan.tiles))
    features = json.loads((tmp_path / "detections.geojson").read_text())["features"]
    labels = np.asarray(zarr.open_array(str(tmp_path / "labels.zarr"), mode="r")[:])
    assert summary["cell_count"] == len(features) > 150
    assert set(np.unique(labels)) == set(range(summary["cell_count"] + 1))
    assert not (tmp_path / CHECKPOINT_DIR).exists() or not any((tmp_path / CHECKPOINT_DIR).rglob("*.npz"))
    label_ids = [f["properties"]["measurements"]["Label"] for f in features]
    assert label_ids == list(range(1, len(features) + 1))


def test_a_rerun_recomputes_only_missing_tiles(real_crop: Path, nuclei_model: Path, tmp_path: Path) -> None:
    plan = _plan(real_crop, nuclei_model)
    checkpoints = TileCheckpoints(tmp_path, plan.spec.grid.fingerprint())
    submitted: list[int] = []

    def crash_after_first(spec: SegmentSpec, tiles: list[Tile]) -> Submitted:
        if submitted:
            raise RuntimeError("worker lost")
        submitted.extend(t.index for t in tiles)
        return run_in_process(spec, tiles)

    with pytest.raises(RuntimeError, match="worker lost"):
        run_batches(plan.spec, plan.tiles, crash_after_first, checkpoints, FanOut(batch_size=1, max_in_flight=1))
    assert checkpoints.done_indices() == set(submitted) and len(submitted) == 1
    rerun: list[int] = []

    def counting(spec: SegmentSpec, tiles: list[Tile]) -> Submitted:
        rerun.extend(t.index for t in tiles)
        return run_in_process(spec, tiles)

    ran = run_batches(plan.spec, plan.tiles, counting, checkpoints, FanOut(batch_size=2, max_in_flight=1))
    assert ran == len(rerun) == len(plan.tiles) - 1 and not set(rerun) & set(submitted)


def test_cancelling_stops_submitting_and_cancels_batches_in_flight(
    real_crop: Path, nuclei_model: Path, tmp_path: Path
) -> None:
    plan = _plan(real_crop, nuclei_model)
    cancelled: list[int] = []
    polls = iter(range(100))

    def never_finishes(spec: SegmentSpec, tiles: list[Tile]) -> Submitted:
        return Submitted(future=Future(), cancel=lambda: cancelled.append(tiles[0].index))

    def cancel_on_second_poll() -> None:
        if next(polls) >= 1:
            raise JobCancelledError("job 'j' was cancelled")

    with pytest.raises(JobCancelledError):
        run_batches(
            plan.spec,
            plan.tiles,
            never_finishes,
            TileCheckpoints(tmp_path, "g"),
            FanOut(batch_size=1, max_in_flight=2, check_cancelled=cancel_on_second_poll),
        )
    assert sorted(cancelled) == [plan.tiles[0].index, plan.tiles[1].index]  # bounded: two in flight
