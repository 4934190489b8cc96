"""Tissue detection on a thumbnail: threshold plus morphology, every size in µm.

Brightfield tissue is darker than the glass; fluorescence tissue is brighter than a dark
background (`dark_background=True`). The mask's pixel size is recorded, so any consumer can map it
to level-0 pixels or to a tile grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import tiffslide
from scipy import ndimage
from skimage import filters, morphology
from skimage.color import rgb2gray

from wfsched.imaging.slide import SlideInfo, read_rgb

# 8 µm/px keeps a 20 mm × 15 mm section at 2500 × 1900 px: fine enough for 50 µm structures,
# small enough to threshold in well under a second.
THUMBNAIL_MPP = 8.0

# Rows of the source level read at once when building the thumbnail (bounds memory on huge levels).
_STRIP_ROWS_PX = 4096


@dataclass(frozen=True)
class TissueOptions:
    min_object_area_um2: float = 10_000.0
    fill_holes_area_um2: float = 10_000.0
    closing_radius_um: float = 16.0
    dark_background: bool = False
    # None: Otsu's threshold; else a fixed grey level in [0, 1].
    threshold: float | None = None


@dataclass(frozen=True)
class TissueMask:
    mask: npt.NDArray[np.bool_]
    mask_mpp: float
    threshold: float

    @property
    def area_mm2(self) -> float:
        return float(self.mask.sum()) * (self.mask_mpp / 1000.0) ** 2

    @property
    def fraction(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0


def read_thumbnail(
    slide: tiffslide.TiffSlide, info: SlideInfo, target_mpp: float = THUMBNAIL_MPP
) -> tuple[npt.NDArray[np.uint8], float]:
    """An RGB thumbnail near `target_mpp` and its exact pixel size.

    Block-averages the coarsest level that is still finer than the target by a whole factor, in
    strips, so a slide with a single huge level never has to fit in memory at once.
    """
    level = slide.get_best_level_for_downsample(target_mpp / info.mpp)
    level_mpp = info.level_mpps[level]
    level_w, level_h = slide.level_dimensions[level]
    # Never average blocks larger than the level itself: a tiny claimed pixel size would otherwise
    # read (target/mpp)² pixels of padding (a job asking 0.001 µm/px took 900 MB).
    factor = max(1, min(round(target_mpp / level_mpp), level_w, level_h))
    out_w, out_h = max(1, level_w // factor), max(1, level_h // factor)
    strip_rows = max(factor, (_STRIP_ROWS_PX // factor) * factor)
    strips: list[npt.NDArray[np.uint8]] = []
    for top in range(0, out_h * factor, strip_rows):
        rows = min(strip_rows, out_h * factor - top)
        origin0 = (0, round(top * info.level_downsamples[level]))
        strip = read_rgb(slide, origin0, level, (out_w * factor, rows)).astype(np.float32)
        blocks = strip.reshape(rows // factor, factor, out_w, factor, 3).mean(axis=(1, 3))
        strips.append(np.rint(blocks).astype(np.uint8))
    return np.concatenate(strips, axis=0), level_mpp * factor


def _threshold(gray: npt.NDArray[np.floating], options: TissueOptions) -> float:
    if options.threshold is not None:
        return options.threshold
    if float(gray.max() - gray.min()) < 1e-3:
        # A blank slide has no tissue; Otsu would split noise.
        return 2.0 if options.dark_background else -1.0
    return float(filters.threshold_otsu(gray))


def _disk_px(radius_um: float, mpp: float) -> npt.NDArray[np.bool_]:
    return np.asarray(morphology.disk(max(0, round(radius_um / mpp))), dtype=np.bool_)


def detect_tissue(rgb: npt.NDArray[np.uint8], mpp: float, options: TissueOptions) -> TissueMask:
    """Threshold a thumbnail, close small gaps, drop specks and fill holes (sizes in µm²)."""
    gray = filters.gaussian(rgb2gray(rgb), sigma=1.0)
    threshold = _threshold(gray, options)
    mask = gray > threshold if options.dark_background else gray < threshold
    if options.closing_radius_um > 0:
        mask = ndimage.binary_closing(mask, structure=_disk_px(options.closing_radius_um, mpp))
    px_area_um2 = mpp * mpp
    min_object_px = math.ceil(options.min_object_area_um2 / px_area_um2)
    max_hole_px = math.floor(options.fill_holes_area_um2 / px_area_um2)
    if min_object_px > 1:
        mask = morphology.remove_small_objects(mask, max_size=min_object_px - 1)
    if max_hole_px > 0:
        mask = morphology.remove_small_holes(mask, max_size=max_hole_px)
    return TissueMask(mask=np.asarray(mask, dtype=bool), mask_mpp=mpp, threshold=threshold)


def tissue_mask_of(slide: tiffslide.TiffSlide, info: SlideInfo, options: TissueOptions) -> TissueMask:
    rgb, mpp = read_thumbnail(slide, info)
    return detect_tissue(rgb, mpp, options)
