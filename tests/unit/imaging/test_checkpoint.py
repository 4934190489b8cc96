from __future__ import annotations

from pathlib import Path

import numpy as np

from wfsched.imaging.checkpoint import TileCheckpoints
from wfsched.imaging.stitch import DetectedObject, TileResult


def test_results_round_trip_and_other_grids_are_dropped(tmp_path: Path) -> None:
    old = TileCheckpoints(tmp_path, "old-grid")
    old.save(TileResult(0, (0, 0), np.zeros((0, 0), np.uint16)))
    store = TileCheckpoints(tmp_path, "new-grid")
    assert not (tmp_path / "old-grid").exists()
    labels = np.array([[0, 1], [2, 2]], np.uint16)
    objects = [
        DetectedObject(1, (1.5, 0.5), [(1, 0), (2, 0), (2, 1), (1, 0)]),
        DetectedObject(2, (1.0, 1.5), [(0, 1), (2, 1), (2, 2), (0, 1)]),
    ]
    store.save(TileResult(3, (100, 200), labels, objects))
    store.save(TileResult(4, (0, 0), np.zeros((0, 0), np.uint16)))
    assert store.done_indices() == {3, 4}
    loaded = store.load(3)
    assert loaded.origin_px == (100, 200) and (loaded.labels == labels).all()
    assert loaded.objects == [
        DetectedObject(o.area_px, o.centroid_px, [(float(x), float(y)) for x, y in o.outline]) for o in objects
    ]
    assert store.load(4).objects == []
