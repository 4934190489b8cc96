"""Slides: opening with tiffslide, pixel size, reading regions at a chosen pixel size.

Every failure to read a slide becomes a SlideReadError with a sentence a user can act on; the
tiffslide/tifffile/zarr errors underneath are mapped here, at the boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import tiffslide

from wfsched.exceptions import SlideReadError

# InstanSeg treats pixel sizes within 1 % of the model's as equal and does not resample them;
# we do the same, so a 0.499 µm/px slide runs at its native grid for a 0.5 µm/px model.
SAME_MPP_TOLERANCE = 0.01

# Pixel sizes outside this range are metadata errors (cm or inch units taken for µm).
PLAUSIBLE_MPP = (0.05, 100.0)


@dataclass(frozen=True)
class SlideInfo:
    """What the pipeline needs to know about a slide; pickles, unlike an open TiffSlide."""

    path: Path
    width_px: int
    height_px: int
    mpp: float
    level_downsamples: tuple[float, ...]

    @property
    def level_mpps(self) -> tuple[float, ...]:
        return tuple(self.mpp * d for d in self.level_downsamples)


def open_slide(path: Path) -> tiffslide.TiffSlide:
    """Open a slide, turning every way it can be unreadable into a SlideReadError."""
    path = Path(path)
    if not path.exists():
        raise SlideReadError(f"slide {str(path)!r} does not exist")
    if not path.is_file():
        raise SlideReadError(f"slide {str(path)!r} is not a file")
    try:
        slide = tiffslide.TiffSlide(path)
        _ = slide.level_dimensions
    except Exception as error:  # tifffile raises many types; the user needs one message
        raise SlideReadError(f"slide {str(path)!r} cannot be opened as a slide: {error}") from error
    return slide


def slide_mpp(slide: tiffslide.TiffSlide, override_mpp: float | None = None) -> float:
    """Level-0 pixel size in µm: the override if given, else the slide's metadata."""
    if override_mpp is not None:
        return float(override_mpp)
    props = slide.properties
    mpp_x, mpp_y = props.get("tiffslide.mpp-x"), props.get("tiffslide.mpp-y")
    if mpp_x is None:
        raise SlideReadError("the slide has no pixel size in its metadata: set `pixel_size_um` in the job's params")
    mpp = float(mpp_x) if mpp_y is None else (float(mpp_x) + float(mpp_y)) / 2
    if not PLAUSIBLE_MPP[0] <= mpp <= PLAUSIBLE_MPP[1]:
        raise SlideReadError(
            f"the slide's pixel size {mpp} µm/px is implausible: set `pixel_size_um` in the job's params"
        )
    return mpp


def slide_info(slide: tiffslide.TiffSlide, path: Path, override_mpp: float | None = None) -> SlideInfo:
    width_px, height_px = slide.dimensions
    return SlideInfo(
        path=Path(path),
        width_px=int(width_px),
        height_px=int(height_px),
        mpp=slide_mpp(slide, override_mpp),
        level_downsamples=tuple(float(d) for d in slide.level_downsamples),
    )


def inspect_slide(path: Path, override_mpp: float | None = None) -> SlideInfo:
    """Open a slide, check that its smallest level decodes, and describe it."""
    slide = open_slide(path)
    try:
        info = slide_info(slide, path, override_mpp)
        # Decoding a few pixels of the last level catches truncated and corrupt files early.
        last = slide.level_count - 1
        read_rgb(slide, (0, 0), last, (1, 1))
        return info
    finally:
        slide.close()


def working_mpp(info: SlideInfo, model_mpp: float) -> float:
    """The pixel size to segment at: a level's own size when within tolerance of the model's."""
    for level_mpp in info.level_mpps:
        if math.isclose(level_mpp, model_mpp, rel_tol=SAME_MPP_TOLERANCE):
            return level_mpp
    return model_mpp


def read_rgb(
    slide: tiffslide.TiffSlide, origin_px: tuple[int, int], level: int, size_px: tuple[int, int]
) -> npt.NDArray[np.uint8]:
    """Read a region as an (h, w, 3) uint8 array; `origin_px` in level-0 pixels, `size_px` at `level`."""
    try:
        region = slide.read_region(origin_px, level, size_px, as_array=True)
    except Exception as error:  # a truncated or corrupt tile surfaces only when decoded
        raise SlideReadError(f"slide {slide!r} could not be read at {origin_px}: {error}") from error
    region = np.asarray(region)
    if region.ndim == 2:
        region = np.repeat(region[..., None], 3, axis=2)
    return np.ascontiguousarray(region[..., :3]).astype(np.uint8, copy=False)


def read_window_at_mpp(
    slide: tiffslide.TiffSlide, info: SlideInfo, window: tuple[int, int, int, int], target_mpp: float
) -> npt.NDArray[np.uint8]:
    """Read `window` = (x, y, w, h) given in pixels at `target_mpp`, resampled to exactly (h, w).

    Reads from the finest level that is not finer than needed, as InstanSeg does, then resizes.
    """
    x_px, y_px, w_px, h_px = window
    scale_to_level0 = target_mpp / info.mpp
    level = slide.get_best_level_for_downsample(scale_to_level0)
    level_ds = info.level_downsamples[level]
    origin0 = (round(x_px * scale_to_level0), round(y_px * scale_to_level0))
    read_w = max(1, round(w_px * scale_to_level0 / level_ds))
    read_h = max(1, round(h_px * scale_to_level0 / level_ds))
    region = read_rgb(slide, origin0, level, (read_w, read_h))
    if region.shape[:2] == (h_px, w_px):
        return region
    return _resize_rgb(region, (h_px, w_px))


def _resize_rgb(region: npt.NDArray[np.uint8], shape_px: tuple[int, int]) -> npt.NDArray[np.uint8]:
    from skimage.transform import resize  # imported late: skimage's import is slow

    resized = resize(region, (*shape_px, 3), order=1, preserve_range=True, anti_aliasing=True)
    return np.asarray(np.clip(np.rint(resized), 0, 255), dtype=np.uint8)
