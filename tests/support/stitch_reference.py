"""The per-object post-processing that issue 8 replaced, kept verbatim as the reference.

`tests/unit/imaging/test_stitch_equivalence.py` checks the vectorised `keep_core_objects` against
it on real tiles: same objects, equal areas and centroids, outlines within half a pixel. It is
slow (~120 ms per 512 px tile: Douglas–Peucker in Python and an `np.unique` over the window).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from skimage import measure

from wfsched.imaging.geometry import Ring
from wfsched.imaging.stitch import DetectedObject, Labels, TileResult, _in_core
from wfsched.imaging.tiling import Tile, TileGrid


def reference_outer_ring(mask: npt.NDArray[np.bool_]) -> Ring:
    padded = np.pad(mask.astype(np.uint8), 1)
    contours = measure.find_contours(padded, 0.5)
    if not contours:
        return []
    longest = max(contours, key=len)
    simplified = measure.approximate_polygon(longest, tolerance=0.25)
    ring = [(float(c) - 0.5, float(r) - 0.5) for r, c in simplified]
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    return ring


def _touches_inner_edge(box: tuple[slice, slice], tile: Tile, grid: TileGrid) -> bool:
    win_x, win_y, win_w, win_h = tile.window
    rows, cols = box
    return (
        (rows.start == 0 and win_y > 0)
        or (cols.start == 0 and win_x > 0)
        or (rows.stop == win_h and win_y + win_h < grid.height_px)
        or (cols.stop == win_w and win_x + win_w < grid.width_px)
    )


def reference_keep_core_objects(window_labels: Labels, tile: Tile, grid: TileGrid) -> TileResult:
    _, inverse = np.unique(window_labels, return_inverse=True)
    dense = inverse.reshape(window_labels.shape).astype(np.int32)
    if window_labels.min() != 0:
        dense += 1
    boxes = ndimage.find_objects(dense)
    win_x, win_y = tile.window[0], tile.window[1]
    kept: list[tuple[int, tuple[slice, slice], DetectedObject]] = []
    for label, box in enumerate(boxes, start=1):
        if box is None or _touches_inner_edge(box, tile, grid):
            continue
        mask = dense[box] == label
        rows, cols = np.nonzero(mask)
        centroid = (win_x + box[1].start + cols.mean() + 0.5, win_y + box[0].start + rows.mean() + 0.5)
        if not _in_core(centroid, tile):
            continue
        ring = [(x + win_x + box[1].start, y + win_y + box[0].start) for x, y in reference_outer_ring(mask)]
        kept.append((label, box, DetectedObject(int(mask.sum()), centroid, ring)))
    if not kept:
        return TileResult(tile.index, (tile.window[0], tile.window[1]), np.zeros((0, 0), np.uint16))
    y0 = min(box[0].start for _, box, _ in kept)
    x0 = min(box[1].start for _, box, _ in kept)
    y1 = max(box[0].stop for _, box, _ in kept)
    x1 = max(box[1].stop for _, box, _ in kept)
    lookup = np.zeros(int(dense.max()) + 1, dtype=np.int32)
    for new_label, (old_label, _, _) in enumerate(kept, start=1):
        lookup[old_label] = new_label
    cropped: Labels = lookup[dense[y0:y1, x0:x1]].astype(np.uint16)
    return TileResult(tile.index, (tile.window[0] + x0, tile.window[1] + y0), cropped, [o for _, _, o in kept])
