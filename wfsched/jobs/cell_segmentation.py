"""The `cell_segmentation` job type: InstanSeg over the tissue of a slide, as GPU Ray tasks."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wfsched.exceptions import JobError
from wfsched.imaging.models import resolve_model
from wfsched.imaging.pipeline import (
    DETECTIONS_NAME,
    LABELS_NAME,
    FanOut,
    GrantAtOnce,
    SegmentationPlan,
    SlotSource,
    SubmitBatch,
    Submitted,
    plan_segmentation,
    segment_slide,
)
from wfsched.imaging.segment import SegmentedBatch, SegmentSpec, model_info
from wfsched.imaging.slide import PLAUSIBLE_MPP, inspect_slide
from wfsched.imaging.tiling import Tile
from wfsched.imaging.tissue import TissueMask
from wfsched.jobs.registry import JobContext, JobType
from wfsched.jobs.tissue_mask import (
    TissueMaskParams,
    compute_tissue,
    load_upstream_mask,
    write_tissue_outputs,
)
from wfsched.observe import logs
from wfsched.observe.metrics import Meter

SUMMARY_NAME = "summary.json"
# Tiles per task when the job does not say. On a GPU a task overlaps decoding, the model and
# post-processing only across its own batches, so it needs several (an H200 segments 16 tiles in
# ~0.25 s); on CPUs a task of 4 tiles (~8 s) keeps progress fine-grained and cores evenly loaded.
TASK_TILES_ON_GPU = 16
TASK_TILES_ON_CPU = 4


class CellSegmentationParams(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: str = Field(
        "brightfield_nuclei",
        description="a fetched model name (brightfield_nuclei, fluorescence_nuclei_and_cells) or a .pt path",
    )
    # 512 px tiles with a 64 px halo recompute (512/384)² ≈ 1.8× the area, against ~2.7× for
    # InstanSeg's own 512 px tiles with 200 px of overlap. Larger tiles pay off on a GPU; on CPU
    # InstanSeg's post-processing grows faster than the area (a 1024² tile took 5.5× a 512² one).
    tile_size_px: int = Field(512, ge=256, le=4096, description="tile edge at the model's pixel size")
    # 64 px = 32 µm at 0.5 µm/px: wider than the largest nucleus, as seam handling requires.
    halo_px: int = Field(64, ge=32, le=512, description="context around each tile; > the largest cell")
    batch_size: int | None = Field(
        None, ge=1, le=256, description="tiles per Ray task; default 16 when tasks get GPUs, 4 on CPUs"
    )
    forward_batch_tiles: int | None = Field(
        None, ge=1, le=64, description="tiles per model call within a task; default 4 on a GPU, 1 on CPU"
    )
    max_batches_in_flight: int = Field(4, ge=1, le=1024, description="batches running at once")
    pixel_size_um: float | None = Field(
        None, ge=PLAUSIBLE_MPP[0], le=PLAUSIBLE_MPP[1], description="override the slide's µm/px"
    )
    target: Literal["nuclei", "cells"] = Field("nuclei", description="cells needs a model that has both")
    dark_background: bool = Field(False, description="for the job's own tissue mask (fluorescence)")

    @model_validator(mode="after")
    def _halo_fits(self) -> CellSegmentationParams:
        if self.tile_size_px < 2 * self.halo_px + 128:
            raise ValueError(f"tile_size_px must be at least 2 × halo_px + 128 = {2 * self.halo_px + 128}")
        return self


def _tissue_for(ctx: JobContext, params: CellSegmentationParams) -> tuple[TissueMask, str]:
    """The mask of an upstream tissue_mask job on the same image, else one computed here."""
    here = Path(ctx.image_path).resolve()
    for upstream in ctx.upstream.values():
        if upstream.job_type == "tissue_mask" and Path(upstream.image_path).resolve() == here:
            return load_upstream_mask(upstream), f"upstream:{upstream.job_id}"
    tissue_params = TissueMaskParams.model_validate(
        {"pixel_size_um": params.pixel_size_um, "dark_background": params.dark_background}
    )
    tissue, info = compute_tissue(ctx.image_path, tissue_params)
    write_tissue_outputs(tissue, info, ctx.output_dir)
    return tissue, "computed"


def ray_submitter(num_gpus: float, log_fields: Mapping[str, str] | None = None) -> SubmitBatch:
    """A SubmitBatch that starts one `segment_tiles` Ray task per batch.

    Each task logs with `log_fields` (the job's, observe/logs.py) and is named after its tenant
    and job in Ray's dashboard.
    """
    import ray

    from wfsched.imaging.segment_task import segment_tiles

    fields = dict(log_fields or {})
    task = segment_tiles.options(num_gpus=num_gpus, name=logs.task_name("segment_tiles", fields))

    def submit(spec: SegmentSpec, tiles: list[Tile]) -> Submitted:
        # Ray's stubs type a task by the parameters before its defaults: log_fields is the third.
        ref = task.remote(spec, tiles, fields)  # type: ignore[call-arg]
        # A cancel interrupts the task (its worker then retires, see segment.py); force kills the
        # worker process, for a task stuck where an interrupt does not reach (inside a C call).
        return Submitted(
            future=ref.future(),
            cancel=lambda: ray.cancel(ref),
            force_cancel=lambda: ray.cancel(ref, force=True),
        )

    return submit


def plan_for(ctx: JobContext, params: CellSegmentationParams) -> tuple[SegmentationPlan, TissueMask, str]:
    model_path = resolve_model(params.model, ctx.settings.cache_dir, ctx.settings.data_roots)
    if params.target == "cells" and not model_info(str(model_path)).cells_and_nuclei:
        raise JobError(f"model {params.model!r} segments nuclei only: use target 'nuclei' or a cells model")
    info = inspect_slide(ctx.image_path, params.pixel_size_um)
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    tissue, source = _tissue_for(ctx, params)
    plan = plan_segmentation(
        info,
        model_path,
        tissue,
        tile_px=params.tile_size_px,
        halo_px=params.halo_px,
        target=params.target,
        forward_batch_tiles=params.forward_batch_tiles,
    )
    return plan, tissue, source


def segment(
    ctx: JobContext, submit: SubmitBatch, gpus_per_task: float = 0.0, slots: SlotSource | None = None
) -> dict[str, Any]:
    """The runner's body with the task launcher passed in (Ray in `run`, in-process in tests).

    `gpus_per_task` is what each of `submit`'s tasks holds; `slots` says when a batch may go out
    (the dispatcher in `run`; by default every batch at once).
    """
    import json

    params = cast(CellSegmentationParams, ctx.params)
    plan, tissue, source = plan_for(ctx, params)
    fan_out = FanOut(
        batch_size=params.batch_size or (TASK_TILES_ON_GPU if gpus_per_task > 0 else TASK_TILES_ON_CPU),
        max_in_flight=params.max_batches_in_flight,
        on_progress=ctx.report_progress,
        check_cancelled=ctx.check_cancelled,
        cancel_grace_s=ctx.settings.cancel_grace_s,
        on_batch=functools.partial(_measure_batch, _meter(ctx.settings.metrics_tenant_label), ctx, gpus_per_task),
        slots=slots or GrantAtOnce(),
    )
    summary = segment_slide(plan, submit, ctx.output_dir, fan_out)
    area_mm2 = tissue.area_mm2
    summary.update(
        {
            "model": params.model,
            "target": params.target,
            "tissue_source": source,
            "tissue_area_mm2": round(area_mm2, 6),
            "cells_per_mm2": round(summary["cell_count"] / area_mm2, 3) if area_mm2 > 0 else None,
        }
    )
    artifacts = [DETECTIONS_NAME, LABELS_NAME, SUMMARY_NAME]
    if source == "computed":
        artifacts += ["tissue_mask.png", "tissue.geojson"]
    summary["artifacts"] = artifacts
    (ctx.output_dir / SUMMARY_NAME).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


@functools.cache
def _meter(tenant_label: bool) -> Meter:
    return Meter(tenant_label)


def _measure_batch(meter: Meter, ctx: JobContext, gpus: float, batch: SegmentedBatch) -> None:
    """Tiles, seconds per tile, and the accelerator time the batch's task held, per tenant.

    A task that held GPUs counts wall × GPUs as GPU-seconds (whatever device its code ran on);
    one on CPUs counts its wall time as worker-seconds.
    """
    tiles, wall_s = len(batch.results), batch.stage_s.get("wall", 0.0)
    accelerator = "gpu" if gpus > 0 else "cpu"
    tenant = meter.tenant(ctx.user_id)
    meter.inc("wfsched_tiles_segmented_total", tiles, tenant=tenant)
    meter.inc("wfsched_accelerator_seconds_total", wall_s * (gpus or 1.0), tenant=tenant, accelerator=accelerator)
    for _ in range(tiles):
        meter.observe("wfsched_tile_seconds", wall_s / tiles, accelerator=accelerator)


def run(ctx: JobContext) -> dict[str, Any]:
    """Batches as Ray tasks, each going out when the dispatcher grants it a slot (fair share)."""
    from wfsched.control.dispatcher import task_slots

    slots = task_slots(ctx.settings, ctx.user_id, f"{ctx.workflow_id}/{ctx.job_id}")
    gpus_per_task = slots.gpus_per_task()
    return segment(ctx, ray_submitter(gpus_per_task, ctx.log_fields), gpus_per_task, slots)


JOB_TYPES = [
    JobType(
        name="cell_segmentation",
        params_model=CellSegmentationParams,
        run=run,
        description="InstanSeg nuclei/cells over tissue: QuPath GeoJSON detections, label image, summary.",
    )
]
