"""The per-object post-processing that issue 8 replaced, kept verbatim as the reference.

The equivalence tests (tests/unit/imaging/test_stitch_equivalence.py on synthetic labels,
tests/e2e/imaging/test_stitch_on_real_tiles.py on the real model's) check `keep_core_objects` against
it with `assert_equivalent`: same objects, equal areas and centroids, outlines within half a pixel. It is
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


# How close two outlines of one object must be: both simplify the same marching-squares contour
# with a 0.25 px tolerance, so they can differ by at most 0.5 px (in practice ~0.2 px).
OUTLINE_TOLERANCE_PX = 0.5


def _distances_to_ring(points: npt.NDArray[np.float64], ring: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Each point's distance to the closed polyline `ring` (first point repeated last)."""
    starts, ends = ring[:-1], ring[1:]
    edges = ends - starts
    offsets = points[:, None, :] - starts[None]
    along = np.clip((offsets * edges).sum(-1) / np.maximum((edges * edges).sum(-1), 1e-12), 0, 1)
    nearest = starts[None] + along[..., None] * edges[None]
    distances: npt.NDArray[np.float64] = np.sqrt(((points[:, None, :] - nearest) ** 2).sum(-1)).min(1)
    return distances


def hausdorff_px(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    ring_a, ring_b = np.asarray(a, float), np.asarray(b, float)
    return float(max(_distances_to_ring(ring_a, ring_b).max(), _distances_to_ring(ring_b, ring_a).max()))


def assert_equivalent(ours: TileResult, reference: TileResult) -> None:
    assert ours.tile_index == reference.tile_index and ours.origin_px == reference.origin_px
    assert ours.labels.shape == reference.labels.shape and (ours.labels == reference.labels).all()
    assert [o.area_px for o in ours.objects] == [o.area_px for o in reference.objects]
    assert [o.centroid_px for o in ours.objects] == [o.centroid_px for o in reference.objects]
    for mine, theirs in zip(ours.objects, reference.objects, strict=True):
        assert mine.outline[0] == mine.outline[-1]
        assert hausdorff_px(mine.outline, theirs.outline) <= OUTLINE_TOLERANCE_PX
