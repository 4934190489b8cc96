"""The `tissue_mask` job type: where on the slide the tissue is, as a PNG mask and a GeoJSON annotation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from wfsched.exceptions import JobError
from wfsched.imaging.outputs import tissue_feature_collection, write_mask_png
from wfsched.imaging.slide import open_slide, slide_info
from wfsched.imaging.tissue import TissueMask, TissueOptions, tissue_mask_of
from wfsched.jobs.registry import JobContext, JobType, UpstreamJob

MASK_NAME = "tissue_mask.png"
GEOJSON_NAME = "tissue.geojson"


class TissueMaskParams(BaseModel):
    """Sizes in µm²/µm, so one set of params suits slides scanned at any resolution."""

    model_config = ConfigDict(extra="forbid")

    min_object_area_um2: float = Field(10_000.0, ge=0, description="drop tissue pieces smaller than this")
    fill_holes_area_um2: float = Field(10_000.0, ge=0, description="fill holes in tissue smaller than this")
    closing_radius_um: float = Field(16.0, ge=0, le=1000, description="close gaps narrower than this")
    dark_background: bool = Field(False, description="tissue brighter than background (fluorescence)")
    threshold: float | None = Field(None, ge=0, le=1, description="fixed grey threshold; default Otsu")
    pixel_size_um: float | None = Field(None, gt=0, le=100, description="override the slide's µm/px")

    def options(self) -> TissueOptions:
        return TissueOptions(
            min_object_area_um2=self.min_object_area_um2,
            fill_holes_area_um2=self.fill_holes_area_um2,
            closing_radius_um=self.closing_radius_um,
            dark_background=self.dark_background,
            threshold=self.threshold,
        )


def compute_tissue(image_path: Path, params: TissueMaskParams) -> tuple[TissueMask, float]:
    """The tissue mask of a slide and the slide's level-0 pixel size."""
    slide = open_slide(image_path)
    try:
        info = slide_info(slide, image_path, params.pixel_size_um)
        return tissue_mask_of(slide, info, params.options()), info.mpp
    finally:
        slide.close()


def write_tissue_outputs(tissue: TissueMask, level0_mpp: float, output_dir: Path) -> dict[str, Any]:
    output_dir.mkdir(parents=True, exist_ok=True)
    write_mask_png(tissue.mask, output_dir / MASK_NAME)
    collection = tissue_feature_collection(tissue.mask, tissue.mask_mpp, level0_mpp, tissue.area_mm2)
    (output_dir / GEOJSON_NAME).write_text(json.dumps(collection), encoding="utf-8")
    return {
        "tissue_area_mm2": round(tissue.area_mm2, 6),
        "tissue_fraction": round(tissue.fraction, 6),
        "mask_pixel_size_um": tissue.mask_mpp,
        "mask_scale_to_level0": tissue.mask_mpp / level0_mpp,
        "threshold": round(tissue.threshold, 6),
        "tissue_pieces": len(collection["features"][0]["geometry"]["coordinates"])
        if collection["features"]
        else 0,
        "mask_file": MASK_NAME,
        "artifacts": [MASK_NAME, GEOJSON_NAME],
    }


def run(ctx: JobContext) -> dict[str, Any]:
    params = cast(TissueMaskParams, ctx.params)
    tissue, level0_mpp = compute_tissue(ctx.image_path, params)
    ctx.check_cancelled()
    return write_tissue_outputs(tissue, level0_mpp, ctx.output_dir)


def load_upstream_mask(upstream: UpstreamJob) -> TissueMask:
    """The mask a finished `tissue_mask` job wrote, as a TissueMask."""
    path = upstream.output_dir / str(upstream.result.get("mask_file", MASK_NAME))
    try:
        mask = np.asarray(Image.open(path)) > 0
    except OSError as error:
        raise JobError(
            f"the tissue mask of upstream job {upstream.job_id!r} cannot be read: {error}"
        ) from error
    return TissueMask(
        mask=mask,
        mask_mpp=float(upstream.result["mask_pixel_size_um"]),
        threshold=float(upstream.result.get("threshold", 0.0)),
    )


JOB_TYPES = [
    JobType(
        name="tissue_mask",
        params_model=TissueMaskParams,
        run=run,
        description="Tissue mask of a slide: PNG mask, GeoJSON annotation, tissue area and fraction.",
    )
]
