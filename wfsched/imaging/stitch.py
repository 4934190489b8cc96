"""Keeping every object exactly once across tile seams.

Per tile (in the worker): an object is kept only by the tile whose core holds its centroid, and
never when it touches a window edge inside the slide (it would be a half). Cores partition the
slide and the halo is wider than the largest object, so each object is whole in the tile that
keeps it. Across tiles (in the runner): two tiles can predict the same seam object with
centroids a hair apart on either side of the seam; pasting in tile order drops an object whose
pixels are already mostly taken, so such a pair still yields one object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt
from scipy import ndimage

from wfsched.imaging.geometry import Ring, framed_outer_ring
from wfsched.imaging.tiling import Tile, TileGrid

Labels = npt.NDArray[np.integer]

# An object whose pixels are already taken beyond this fraction is the same object seen twice.
DUPLICATE_OVERLAP_FRACTION = 0.5


@dataclass(frozen=True)
class DetectedObject:
    """One kept object, in working-grid pixels (QuPath's pixel-corner convention)."""

    area_px: int
    centroid_px: tuple[float, float]
    outline: Ring


@dataclass
class TileResult:
    """The kept objects of one tile: `labels[i]` is object i + 1; labels[0, 0] sits at origin_px."""

    tile_index: int
    origin_px: tuple[int, int]
    labels: Labels
    objects: list[DetectedObject] = field(default_factory=list)


def _in_core(centroid_px: tuple[float, float], tile: Tile) -> bool:
    x, y = centroid_px
    core_x, core_y, core_w, core_h = tile.core
    # Half-open on both axes: a centroid on a seam belongs to exactly one core.
    return core_x <= x < core_x + core_w and core_y <= y < core_y + core_h


def _object_labels(window_labels: Labels) -> Labels:
    """Labels with background 0 and objects 1..max, small enough for `find_objects`.

    A model's labels already are (InstanSeg numbers its objects densely), so they are used as
    they are; only negative or very sparse ids are renumbered, which needs a sort of the window.
    """
    if window_labels.size == 0:
        return np.zeros(window_labels.shape, np.int32)
    low, high = int(window_labels.min()), int(window_labels.max())
    if low >= 0 and high <= window_labels.size:
        return window_labels
    _, inverse = np.unique(window_labels, return_inverse=True)
    dense = inverse.reshape(window_labels.shape).astype(np.int32)
    return dense if low == 0 else dense + 1  # no background in the window: every value is an object


def keep_core_objects(window_labels: Labels, tile: Tile, grid: TileGrid) -> TileResult:
    """The objects this tile owns, relabelled 1..n, cropped to their bounding box, with outlines.

    One pass finds every object's box; the seam decision for all of them is a few array
    comparisons; each remaining object costs OpenCV's moments and one contour on its own box.
    """
    labels = _object_labels(window_labels)
    boxes = ndimage.find_objects(labels)
    candidates = _off_inner_edges(boxes, tile, grid)
    # A background frame, so every box grown by one pixel fits and traced outlines close.
    framed = np.pad(labels, 1)
    win_x, win_y = tile.window[0], tile.window[1]
    kept: list[tuple[int, tuple[slice, slice], DetectedObject]] = []
    for label in candidates:
        rows, cols = box = boxes[label - 1]
        mask = (framed[rows.start : rows.stop + 2, cols.start : cols.stop + 2] == label).view(np.uint8)
        moments = cv2.moments(mask, binaryImage=True)
        area = moments["m00"]
        # The mask's column j is the box's column j - 1; +0.5: pixel (r, c) has its centre at
        # (c + 0.5, r + 0.5) in pixel-corner coordinates. Same arithmetic as np.mean, bit for bit.
        mean_col, mean_row = (moments["m10"] - area) / area, (moments["m01"] - area) / area
        centroid = (win_x + cols.start + mean_col + 0.5, win_y + rows.start + mean_row + 0.5)
        if not _in_core(centroid, tile):
            continue
        ring = framed_outer_ring(mask, origin=(win_x + cols.start, win_y + rows.start))
        kept.append((label, box, DetectedObject(int(area), centroid, ring)))
    return _crop_result(labels, kept, tile)


def _off_inner_edges(boxes: list[tuple[slice, slice] | None], tile: Tile, grid: TileGrid) -> list[int]:
    """The labels whose box meets no window edge inside the slide (all boxes at once)."""
    present = [(label, box) for label, box in enumerate(boxes, start=1) if box is not None]
    if not present:
        return []
    labels = np.array([label for label, _ in present])
    spans = np.array([(b[0].start, b[1].start, b[0].stop, b[1].stop) for _, b in present])
    win_x, win_y, win_w, win_h = tile.window
    touches = (
        ((spans[:, 0] == 0) & (win_y > 0))
        | ((spans[:, 1] == 0) & (win_x > 0))
        | ((spans[:, 2] == win_h) & (win_y + win_h < grid.height_px))
        | ((spans[:, 3] == win_w) & (win_x + win_w < grid.width_px))
    )
    return [int(label) for label in labels[~touches]]


def _crop_result(labels: Labels, kept: list[tuple[int, tuple[slice, slice], DetectedObject]], tile: Tile) -> TileResult:
    if not kept:
        return TileResult(tile.index, (tile.window[0], tile.window[1]), np.zeros((0, 0), np.uint16))
    y0 = min(box[0].start for _, box, _ in kept)
    x0 = min(box[1].start for _, box, _ in kept)
    y1 = max(box[0].stop for _, box, _ in kept)
    x1 = max(box[1].stop for _, box, _ in kept)
    # uint16 holds any tile's count (a 4096² tile of 10 µm nuclei has ~40k) and halves transfers.
    dtype = np.uint16 if len(kept) < np.iinfo(np.uint16).max else np.int32
    lookup: Labels = np.zeros(int(labels.max()) + 1, dtype=dtype)
    lookup[[old_label for old_label, _, _ in kept]] = np.arange(1, len(kept) + 1)
    cropped = lookup[labels[y0:y1, x0:x1]]
    origin = (tile.window[0] + x0, tile.window[1] + y0)
    return TileResult(tile.index, origin, cropped, [obj for _, _, obj in kept])


def paste_objects(canvas: npt.NDArray[np.int32], result: TileResult, first_id: int) -> list[int]:
    """Paste a tile's objects into `canvas` (its region) as first_id, first_id+1, ...

    Objects mostly on pixels that are already taken are seam duplicates and are skipped; the
    others fill only free pixels. Returns the local labels (1-based) that were pasted.
    """
    pasted: list[int] = []
    next_id = first_id
    boxes = ndimage.find_objects(result.labels.astype(np.int32))
    for label, box in enumerate(boxes, start=1):
        if box is None:
            continue
        mask = result.labels[box] == label
        region = canvas[box]
        taken = np.count_nonzero(region[mask])
        if taken > DUPLICATE_OVERLAP_FRACTION * mask.sum():
            continue
        region[mask & (region == 0)] = next_id
        pasted.append(label)
        next_id += 1
    return pasted
