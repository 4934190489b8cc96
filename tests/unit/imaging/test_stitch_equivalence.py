"""The vectorised post-processing against the per-object one it replaced, on synthetic labels.

The comparison on the real model's tiles is tests/e2e/imaging/test_stitch_on_real_tiles.py.

Same objects in the same order, equal areas and centroids, the same relabelled crop, and outlines
within half a pixel (both simplify the same marching-squares contour with a 0.25 px tolerance, so
they can differ by at most 0.5 px; in practice they agree to ~0.2 px).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.stitch_reference import assert_equivalent, hausdorff_px, reference_keep_core_objects
from wfsched.imaging.stitch import keep_core_objects
from wfsched.imaging.tiling import all_tiles, make_grid


def test_the_distance_is_measured_between_outlines() -> None:
    square = [(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0), (0.0, 0.0)]
    assert hausdorff_px(square, square) == 0
    assert hausdorff_px(square, [(x + 0.6, y) for x, y in square]) == pytest.approx(0.6)


@pytest.mark.parametrize("shift", [0, 1000, -7])
def test_labels_that_are_not_small_non_negative_ids_are_renumbered_alike(shift: int) -> None:
    grid = make_grid((120, 100), 0.5, 0.5, tile_px=256, halo_px=16)  # one tile: the whole window
    (tile,) = all_tiles(grid)
    window = np.zeros((100, 120), np.int64)
    window[10:20, 10:25] = 3
    window[40:60, 50:70] = 5_000_000  # sparse: over the window's size, so it is renumbered
    window[70:90, 5:15] = 3  # a second blob of label 3: one object, outlined by its longest ring
    window += shift  # negative, or no background at all (every value an object)
    ours = keep_core_objects(window, tile, grid)
    assert_equivalent(ours, reference_keep_core_objects(window, tile, grid))
    assert len(ours.objects) == (3 if shift else 2)  # with no 0, the "background" is an object too
