"""Seams: every object of a ground-truth label image comes back exactly once and whole."""

from __future__ import annotations

import numpy as np
import pytest

from wfsched.imaging.stitch import TileResult, keep_core_objects, paste_objects
from wfsched.imaging.tiling import all_tiles, make_grid


def _random_discs(height_px: int, width_px: int, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = np.zeros((height_px, width_px), np.int32)
    rows, cols = np.ogrid[:height_px, :width_px]
    for label in range(1, count + 1):
        cy, cx, r = rng.integers(0, height_px), rng.integers(0, width_px), rng.integers(4, 20)
        truth[((rows - cy) ** 2 + (cols - cx) ** 2 <= r * r) & (truth == 0)] = label
    return truth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_objects_on_seams_are_kept_exactly_once_and_whole(seed: int) -> None:
    truth = _random_discs(700, 900, 400, seed)
    grid = make_grid((900, 700), 0.5, 0.5, tile_px=256, halo_px=48)
    canvas = np.zeros_like(truth)
    next_id = 1
    for tile in all_tiles(grid):
        x, y, w, h = tile.window
        result = keep_core_objects(truth[y : y + h, x : x + w], tile, grid)
        ox, oy = result.origin_px
        rh, rw = result.labels.shape
        kept = paste_objects(canvas[oy : oy + rh, ox : ox + rw], result, next_id)
        assert len(kept) == len(result.objects)
        next_id += len(kept)
    present = np.unique(truth[truth > 0])
    assert next_id - 1 == present.size  # no duplicates, none lost
    for label in present:
        ours = np.unique(canvas[truth == label])
        assert ours.size == 1 and ours[0] > 0  # one whole object, not halves
        assert (truth[canvas == ours[0]] == label).all()


def test_a_seam_object_seen_by_two_tiles_is_pasted_once() -> None:
    canvas = np.zeros((20, 20), np.int32)
    labels = np.zeros((20, 20), np.uint16)
    labels[5:10, 5:10] = 1
    assert paste_objects(canvas, TileResult(0, (0, 0), labels), first_id=1) == [1]
    shifted = np.zeros((20, 20), np.uint16)
    shifted[5:10, 6:11] = 1  # the neighbour's prediction of the same nucleus, one pixel off
    assert paste_objects(canvas, TileResult(1, (0, 0), shifted), first_id=2) == []
    assert set(np.unique(canvas)) == {0, 1}


def test_objects_report_area_centroid_and_outline_in_grid_pixels() -> None:
    grid = make_grid((80, 80), 0.5, 0.5, tile_px=100, halo_px=10)
    window = np.zeros((80, 80), np.int32)
    window[20:30, 40:50] = 7
    (tile,) = all_tiles(grid)
    result = keep_core_objects(window, tile, grid)
    (obj,) = result.objects
    assert obj.area_px == 100
    assert obj.centroid_px == pytest.approx((45.0, 25.0))
    xs, ys = zip(*obj.outline, strict=True)
    assert min(xs) >= 39.5 and max(xs) <= 50.5 and min(ys) >= 19.5 and max(ys) <= 30.5
