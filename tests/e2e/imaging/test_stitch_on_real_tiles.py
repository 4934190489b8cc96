"""The vectorised post-processing against the per-object one it replaced, on the real model's tiles.

Same objects in the same order, equal areas and centroids, the same relabelled crop, and outlines
within half a pixel (see tests/support/stitch_reference.py).
"""

from __future__ import annotations

from tests.e2e.imaging.conftest import RealTiles
from tests.support.stitch_reference import assert_equivalent, reference_keep_core_objects
from wfsched.imaging.stitch import keep_core_objects


def test_real_tiles_give_the_same_objects_areas_and_outlines(real_tiles: RealTiles) -> None:
    compared = 0
    for tile, labels in zip(real_tiles.tiles, real_tiles.labels, strict=True):
        ours = keep_core_objects(labels, tile, real_tiles.grid)
        assert_equivalent(ours, reference_keep_core_objects(labels, tile, real_tiles.grid))
        compared += len(ours.objects)
    assert compared > 200  # the crop's dense epidermis: every object of it was compared
