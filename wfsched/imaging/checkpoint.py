"""Finished tile results on disk, so a rerun of an interrupted segmentation recomputes only the rest.

One .npz per tile under a folder named by the grid's fingerprint: results made on a
different grid (tile size, pixel size, model) are never mixed in.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from wfsched.imaging.stitch import DetectedObject, TileResult


class TileCheckpoints:
    def __init__(self, root: Path, fingerprint: str) -> None:
        self.folder = Path(root) / fingerprint
        # Checkpoints of any other grid are stale: drop them so disk use stays bounded.
        if Path(root).is_dir():
            for stale in Path(root).iterdir():
                if stale.is_dir() and stale.name != fingerprint:
                    shutil.rmtree(stale, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, tile_index: int) -> Path:
        return self.folder / f"tile-{tile_index:07d}.npz"

    def done_indices(self) -> set[int]:
        return {int(p.stem.split("-")[1]) for p in self.folder.glob("tile-*.npz")}

    def save(self, result: TileResult) -> None:
        lengths = np.array([len(o.outline) for o in result.objects], dtype=np.int64)
        points = [p for o in result.objects for p in o.outline]
        path = self._path(result.tile_index)
        partial = path.with_name(path.stem + ".part.npz")
        # Uncompressed: zlib cost ~15 ms a tile, as much as segmenting it on a GPU; the files live
        # only until the job has written its outputs.
        np.savez(
            partial,
            origin_px=np.array(result.origin_px, dtype=np.int64),
            labels=result.labels,
            area_px=np.array([o.area_px for o in result.objects], dtype=np.int64),
            centroid_px=np.array([o.centroid_px for o in result.objects], dtype=np.float64).reshape(-1, 2),
            outline_lengths=lengths,
            outline_xy=np.array(points, dtype=np.float64).reshape(-1, 2),
        )
        # Rename last: a tile file that exists is complete, even after a crash mid-write.
        os.replace(partial, path)

    def load(self, tile_index: int) -> TileResult:
        with np.load(self._path(tile_index)) as data:
            bounds = np.concatenate([[0], np.cumsum(data["outline_lengths"])]).tolist()
            xy = list(map(tuple, data["outline_xy"].tolist()))
            objects = [
                DetectedObject(int(area), (centroid[0], centroid[1]), xy[bounds[i] : bounds[i + 1]])
                for i, (area, centroid) in enumerate(
                    zip(data["area_px"].tolist(), data["centroid_px"].tolist(), strict=True)
                )
            ]
            origin = data["origin_px"]
            return TileResult(tile_index, (int(origin[0]), int(origin[1])), data["labels"], objects)

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
