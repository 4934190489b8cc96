"""Result files a pathologist can open: QuPath GeoJSON, a zarr label image, a PNG mask.

Coordinates in every GeoJSON file are level-0 pixels of the slide, so they overlay it in QuPath
(File > Import objects). Measurements use QuPath's map form: {"name": value}.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import zarr
from PIL import Image

from wfsched.imaging.geometry import Ring, polygons, scale_ring
from wfsched.imaging.stitch import DetectedObject, TileResult, paste_objects
from wfsched.imaging.tiling import TileGrid

# QuPath's packed RGB of its default classes: Nucleus/Cell/Tissue as in QuPath 0.5.
CLASS_COLORS: dict[str, list[int]] = {"Nucleus": [200, 0, 0], "Cell": [0, 150, 0], "Tissue": [255, 200, 0]}

# Label-image chunks: 1024² int32 = 4 MiB, a size zarr readers and QuPath extensions handle well.
LABEL_CHUNK_PX = 1024


def _classification(name: str) -> dict[str, Any]:
    return {"name": name, "color": CLASS_COLORS.get(name, [128, 128, 128])}


def write_mask_png(mask: npt.NDArray[np.bool_], path: Path) -> None:
    Image.fromarray(mask.astype(np.uint8) * 255).save(path, format="PNG", optimize=True)


def tissue_feature_collection(
    mask: npt.NDArray[np.bool_], mask_mpp: float, level0_mpp: float, area_mm2: float
) -> dict[str, Any]:
    """The tissue as one QuPath annotation (a MultiPolygon with holes), in level-0 pixels."""
    scale = mask_mpp / level0_mpp
    parts = [[scale_ring(ring, scale) for ring in rings] for rings in polygons(mask)]
    features: list[dict[str, Any]] = []
    if parts:
        features.append(
            {
                "type": "Feature",
                "id": str(uuid.uuid4()),
                "geometry": {"type": "MultiPolygon", "coordinates": parts},
                "properties": {
                    "objectType": "annotation",
                    "name": "Tissue",
                    "classification": _classification("Tissue"),
                    "measurements": {"Area mm^2": round(area_mm2, 6)},
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def detection_feature(
    obj: DetectedObject, object_id: int, grid: TileGrid, class_name: str, id_namespace: uuid.UUID = uuid.NAMESPACE_OID
) -> dict[str, Any]:
    """One QuPath detection: outline and centroid in level-0 pixels, measurements in µm.

    Its id is derived from `id_namespace` (one per job) and the label, so two jobs never share one.
    """
    scale = grid.scale_to_level0
    ring: Ring = scale_ring(obj.outline, scale)
    cx_px, cy_px = obj.centroid_px[0] * scale, obj.centroid_px[1] * scale
    area_um2 = obj.area_px * grid.working_mpp**2
    return {
        "type": "Feature",
        "id": str(uuid.uuid5(id_namespace, str(object_id))),
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {
            "objectType": "detection",
            "classification": _classification(class_name),
            "measurements": {
                "Label": object_id,
                "Area µm^2": round(area_um2, 3),
                "Centroid X µm": round(cx_px * grid.level0_mpp, 3),
                "Centroid Y µm": round(cy_px * grid.level0_mpp, 3),
                "Centroid X px": round(cx_px, 2),
                "Centroid Y px": round(cy_px, 2),
            },
        },
    }


class DetectionWriter:
    """Streams a FeatureCollection to disk one feature at a time (slides hold millions of cells)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._file: IO[str] | None = None

    def __enter__(self) -> DetectionWriter:
        self._file = self.path.open("w", encoding="utf-8")
        self._file.write('{"type": "FeatureCollection", "features": [\n')
        return self

    def write(self, feature: dict[str, Any]) -> None:
        assert self._file is not None, "use DetectionWriter as a context manager"
        self._file.write((",\n" if self.count else "") + json.dumps(feature, ensure_ascii=False))
        self.count += 1

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        assert self._file is not None
        self._file.write("\n]}\n")
        self._file.close()


class LabelImageWriter:
    """A zarr label image on the working grid; its attributes give the scale to level 0.

    Pasted tiles stay in memory, one array per zarr chunk, until `flush_above` says no later tile
    reaches them; each chunk is then encoded and written once (pasting straight into zarr decoded
    and re-encoded up to four 4 MiB chunks per tile). Tiles come in row order, so what is held is
    at most the chunk rows under one row of tile windows. Use it as a context manager: leaving
    writes what is left.
    """

    def __init__(self, path: Path, grid: TileGrid, class_name: str) -> None:
        self.array = zarr.create_array(
            store=str(path),
            shape=(grid.height_px, grid.width_px),
            chunks=(LABEL_CHUNK_PX, LABEL_CHUNK_PX),
            dtype="int32",
            fill_value=0,
            overwrite=True,
            attributes={
                "description": f"{class_name} instance labels; 0 is background; label = GeoJSON Label",
                "axes": ["y", "x"],
                "scale_to_level0": grid.scale_to_level0,
                "pixel_size_um": grid.working_mpp,
                "level0_pixel_size_um": grid.level0_mpp,
            },
        )
        self._chunks: dict[tuple[int, int], npt.NDArray[np.int32]] = {}

    def __enter__(self) -> LabelImageWriter:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.flush_above(self.array.shape[0])

    def paste(self, result: TileResult, first_id: int) -> list[int]:
        """Paste a tile's objects from `first_id` on; returns the local labels kept (see stitch)."""
        if result.labels.size == 0:
            return []
        x, y = result.origin_px
        h, w = result.labels.shape
        canvas = np.zeros((h, w), np.int32)
        for chunk, (rows, cols), (chunk_rows, chunk_cols) in self._overlaps(y, x, h, w):
            canvas[rows, cols] = chunk[chunk_rows, chunk_cols]
        kept = paste_objects(canvas, result, first_id)
        if kept:
            for chunk, (rows, cols), (chunk_rows, chunk_cols) in self._overlaps(y, x, h, w):
                chunk[chunk_rows, chunk_cols] = canvas[rows, cols]
        return kept

    def flush_above(self, row_px: int) -> None:
        """Write the chunks that end at or above `row_px`: no tile from here on may reach them."""
        for key in sorted(self._chunks):
            top, left = key[0] * LABEL_CHUNK_PX, key[1] * LABEL_CHUNK_PX
            chunk = self._chunks[key]
            if top + chunk.shape[0] <= row_px:
                self.array[top : top + chunk.shape[0], left : left + chunk.shape[1]] = chunk
                del self._chunks[key]

    def _overlaps(
        self, y: int, x: int, h: int, w: int
    ) -> list[tuple[npt.NDArray[np.int32], tuple[slice, slice], tuple[slice, slice]]]:
        """The chunks under a region: (chunk array, the region's part, the chunk's part)."""
        height, width = self.array.shape
        found = []
        for row in range(y // LABEL_CHUNK_PX, (y + h - 1) // LABEL_CHUNK_PX + 1):
            for col in range(x // LABEL_CHUNK_PX, (x + w - 1) // LABEL_CHUNK_PX + 1):
                top, left = row * LABEL_CHUNK_PX, col * LABEL_CHUNK_PX
                if (row, col) not in self._chunks:
                    # A chunk written already is read back: correct even for tiles out of order.
                    bottom, right = min(top + LABEL_CHUNK_PX, height), min(left + LABEL_CHUNK_PX, width)
                    self._chunks[(row, col)] = np.asarray(self.array[top:bottom, left:right], dtype=np.int32)
                y0, y1 = max(y, top), min(y + h, top + LABEL_CHUNK_PX)
                x0, x1 = max(x, left), min(x + w, left + LABEL_CHUNK_PX)
                found.append(
                    (
                        self._chunks[(row, col)],
                        (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)),
                        (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left)),
                    )
                )
        return found
