from __future__ import annotations

import numpy as np
import pytest

from wfsched.imaging.geometry import outer_ring, polygons


def _shoelace(ring: list[tuple[float, float]]) -> float:
    xs, ys = np.array(ring).T
    return float(abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))) / 2)


def test_outline_of_a_square_follows_pixel_edges() -> None:
    mask = np.zeros((20, 20), bool)
    mask[5:15, 3:13] = True
    ring = outer_ring(mask)
    assert ring[0] == ring[-1]
    xs, ys = zip(*ring, strict=True)
    assert (min(xs), max(xs), min(ys), max(ys)) == (3.0, 13.0, 5.0, 15.0)
    # Contours cut the corners by half a pixel: 100 px less four corner triangles of 1/8 px².
    assert _shoelace(ring) == pytest.approx(99.5)


def test_polygons_keep_holes_and_sort_largest_first() -> None:
    mask = np.zeros((60, 60), bool)
    mask[5:45, 5:45] = True
    mask[15:25, 15:25] = False
    mask[50:55, 50:55] = True
    big, small = polygons(mask)
    assert len(big) == 2 and len(small) == 1
    area = _shoelace(big[0]) - _shoelace(big[1])
    assert area == pytest.approx(1600 - 100, abs=3)
