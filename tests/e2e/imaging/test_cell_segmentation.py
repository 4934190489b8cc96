"""The cell_segmentation runner body, with an in-process launcher instead of Ray tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pydantic
import pytest

from wfsched.config import Settings
from wfsched.exceptions import JobCancelledError, JobError, ModelNotFoundError
from wfsched.imaging.pipeline import run_in_process
from wfsched.jobs.cell_segmentation import JOB_TYPES, CellSegmentationParams, segment
from wfsched.jobs.registry import JobContext, UpstreamJob
from wfsched.jobs.tissue_mask import TissueMaskParams
from wfsched.jobs.tissue_mask import run as run_tissue


def _ctx(image: Path, out: Path, upstream: dict[str, UpstreamJob] | None = None, **params: object) -> JobContext:
    settings = Settings(cache_dir=Settings().cache_dir)
    return JobContext(
        workflow_id="w",
        job_id="cells",
        user_id="u",
        image_path=image,
        params=CellSegmentationParams(**params),
        settings=settings,
        output_dir=out,
        upstream=upstream or {},
    )


def test_uses_the_upstream_tissue_mask_and_summarises(real_crop: Path, assets: object, tmp_path: Path) -> None:
    tissue_dir = tmp_path / "tissue"
    tissue_ctx = JobContext(
        workflow_id="w",
        job_id="t",
        user_id="u",
        image_path=real_crop,
        params=TissueMaskParams(),
        settings=Settings(),
        output_dir=tissue_dir,
    )
    upstream = {"t": UpstreamJob("t", "tissue_mask", str(real_crop), run_tissue(tissue_ctx), tissue_dir)}
    progress: list[tuple[int, int]] = []
    ctx = _ctx(real_crop, tmp_path / "cells", upstream, tile_size_px=512)
    ctx.on_progress = lambda done, total: progress.append((done, total))
    summary = segment(ctx, run_in_process)
    assert summary["tissue_source"] == "upstream:t"
    assert summary["cell_count"] > 150 and summary["cells_per_mm2"] > 1000
    assert summary["artifacts"] == ["detections.geojson", "labels.zarr", "summary.json"]
    assert json.loads((tmp_path / "cells" / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert progress[-1][0] == progress[-1][1] == summary["tiles_segmented"]
    # Seconds per stage of every task, and how the tasks ran (CPU: one tile per model call).
    assert set(summary["stage_s"]) == {"decode", "transfer", "forward", "postprocess", "wall"}
    assert summary["stage_s"]["forward"] > 0 and summary["stage_s"]["postprocess"] > 0
    assert (summary["devices"], summary["forward_batch_tiles"], summary["tiles_per_task"]) == (["cpu"], [1], 4)


def test_bad_params_models_and_targets_fail_clearly(real_crop: Path, assets: object, tmp_path: Path) -> None:
    assert [t.name for t in JOB_TYPES] == ["cell_segmentation"]
    with pytest.raises(pydantic.ValidationError):
        CellSegmentationParams(tile_size_px=256, halo_px=96)
    with pytest.raises(pydantic.ValidationError):
        CellSegmentationParams(tile=512)  # type: ignore[call-arg]
    with pytest.raises(ModelNotFoundError, match="wfsched fetch"):
        segment(_ctx(real_crop, tmp_path / "a", model="no_such_model"), run_in_process)
    with pytest.raises(JobError, match="nuclei only"):
        segment(_ctx(real_crop, tmp_path / "b", target="cells"), run_in_process)


def test_cancelling_between_batches_raises(real_crop: Path, assets: object, tmp_path: Path) -> None:
    ctx = _ctx(real_crop, tmp_path / "c", tile_size_px=512, batch_size=1, max_batches_in_flight=1)
    ctx.cancel_event.set()
    with pytest.raises(JobCancelledError):
        segment(ctx, run_in_process)
