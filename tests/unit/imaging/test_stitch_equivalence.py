"""The vectorised post-processing against the per-object one it replaced, on the real model's tiles.

Same objects in the same order, equal areas and centroids, the same relabelled crop, and outlines
within half a pixel (both simplify the same marching-squares contour with a 0.25 px tolerance, so
they can differ by at most 0.5 px; in practice they agree to ~0.2 px).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from tests.support.stitch_reference import reference_keep_core_objects
from tests.unit.imaging.conftest import RealTiles
from wfsched.imaging.stitch import TileResult, keep_core_objects
from wfsched.imaging.tiling import all_tiles, make_grid

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


def test_real_tiles_give_the_same_objects_areas_and_outlines(real_tiles: RealTiles) -> None:
    compared = 0
    for tile, labels in zip(real_tiles.tiles, real_tiles.labels, strict=True):
        ours = keep_core_objects(labels, tile, real_tiles.grid)
        assert_equivalent(ours, reference_keep_core_objects(labels, tile, real_tiles.grid))
        compared += len(ours.objects)
    assert compared > 200  # the crop's dense epidermis: every object of it was compared


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
