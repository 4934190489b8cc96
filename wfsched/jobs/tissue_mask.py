"""The `tissue_mask` job type: where on the slide the tissue is, as a PNG mask and a GeoJSON annotation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import numpy as np
import tiffslide
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from wfsched.exceptions import JobError, SlideReadError
from wfsched.imaging.outputs import tissue_feature_collection, write_mask_png
from wfsched.imaging.slide import PLAUSIBLE_MPP, SlideInfo, open_slide, slide_info
from wfsched.imaging.tissue import TissueMask, TissueOptions, tissue_mask_of
from wfsched.jobs.registry import JobContext, JobType, UpstreamJob

MASK_NAME = "tissue_mask.png"
GEOJSON_NAME = "tissue.geojson"
THUMBNAIL_NAME = "thumbnail.png"
# 100 mm × 100 mm: more than any glass slide holds, so no real area is refused.
MAX_AREA_UM2 = 1e10
# Long side of the display thumbnail: enough to see the cells drawn over it in a browser.
THUMBNAIL_PX = 1024


class TissueMaskParams(BaseModel):
    """Sizes in µm²/µm, so one set of params suits slides scanned at any resolution."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    min_object_area_um2: float = Field(
        10_000.0, ge=0, le=MAX_AREA_UM2, description="drop tissue pieces smaller than this"
    )
    fill_holes_area_um2: float = Field(
        10_000.0, ge=0, le=MAX_AREA_UM2, description="fill holes in tissue smaller than this"
    )
    closing_radius_um: float = Field(16.0, ge=0, le=1000, description="close gaps narrower than this")
    dark_background: bool = Field(False, description="tissue brighter than background (fluorescence)")
    threshold: float | None = Field(None, ge=0, le=1, description="fixed grey threshold; default Otsu")
    pixel_size_um: float | None = Field(
        None, ge=PLAUSIBLE_MPP[0], le=PLAUSIBLE_MPP[1], description="override the slide's µm/px"
    )

    def options(self) -> TissueOptions:
        return TissueOptions(
            min_object_area_um2=self.min_object_area_um2,
            fill_holes_area_um2=self.fill_holes_area_um2,
            closing_radius_um=self.closing_radius_um,
            dark_background=self.dark_background,
            threshold=self.threshold,
        )


def compute_tissue(
    image_path: Path, params: TissueMaskParams, thumbnail_to: Path | None = None
) -> tuple[TissueMask, SlideInfo]:
    """The tissue mask of a slide and what the slide is; a display thumbnail too if asked."""
    slide = open_slide(image_path)
    try:
        info = slide_info(slide, image_path, params.pixel_size_um)
        if thumbnail_to is not None:
            write_thumbnail(slide, thumbnail_to)
        return tissue_mask_of(slide, info, params.options()), info
    finally:
        slide.close()


def write_thumbnail(slide: tiffslide.TiffSlide, path: Path) -> None:
    """The slide at most THUMBNAIL_PX on its long side, for people to look at (the web UI)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        slide.get_thumbnail((THUMBNAIL_PX, THUMBNAIL_PX)).convert("RGB").save(path)
    except Exception as error:  # tiffslide/tifffile raise many kinds for unreadable pixel data
        raise SlideReadError(
            f"cannot read a thumbnail of {slide.properties.get('tiffslide.vendor', 'the slide')}: {error}"
        ) from error


def write_tissue_outputs(tissue: TissueMask, info: SlideInfo, output_dir: Path) -> dict[str, Any]:
    level0_mpp = info.mpp
    output_dir.mkdir(parents=True, exist_ok=True)
    write_mask_png(tissue.mask, output_dir / MASK_NAME)
    artifacts = [MASK_NAME, GEOJSON_NAME]
    if (output_dir / THUMBNAIL_NAME).exists():
        artifacts.append(THUMBNAIL_NAME)
    collection = tissue_feature_collection(tissue.mask, tissue.mask_mpp, level0_mpp, tissue.area_mm2)
    (output_dir / GEOJSON_NAME).write_text(json.dumps(collection), encoding="utf-8")
    return {
        "tissue_area_mm2": round(tissue.area_mm2, 6),
        "tissue_fraction": round(tissue.fraction, 6),
        "mask_pixel_size_um": tissue.mask_mpp,
        "mask_scale_to_level0": tissue.mask_mpp / level0_mpp,
        "threshold": round(tissue.threshold, 6),
        "tissue_pieces": len(collection["features"][0]["geometry"]["coordinates"]) if collection["features"] else 0,
        "mask_file": MASK_NAME,
        "slide_width_px": info.width_px,
        "slide_height_px": info.height_px,
        "slide_pixel_size_um": info.mpp,
        "artifacts": artifacts,
    }


def run(ctx: JobContext) -> dict[str, Any]:
    params = cast(TissueMaskParams, ctx.params)
    tissue, info = compute_tissue(ctx.image_path, params, ctx.output_dir / THUMBNAIL_NAME)
    ctx.check_cancelled()
    return write_tissue_outputs(tissue, info, ctx.output_dir)


def load_upstream_mask(upstream: UpstreamJob) -> TissueMask:
    """The mask a finished `tissue_mask` job wrote, as a TissueMask."""
    path = upstream.output_dir / str(upstream.result.get("mask_file", MASK_NAME))
    try:
        mask = np.asarray(Image.open(path)) > 0
    except OSError as error:
        raise JobError(f"the tissue mask of upstream job {upstream.job_id!r} cannot be read: {error}") from error
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
