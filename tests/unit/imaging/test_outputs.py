from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from wfsched.imaging.outputs import (
    DetectionWriter,
    LabelImageWriter,
    detection_feature,
    tissue_feature_collection,
)
from wfsched.imaging.stitch import DetectedObject, TileResult
from wfsched.imaging.tiling import make_grid


def test_detections_are_qupath_features_in_level0_pixels(tmp_path: Path) -> None:
    grid = make_grid((4000, 2000), level0_mpp=0.25, working_mpp=0.5, tile_px=512, halo_px=64)
    obj = DetectedObject(area_px=40, centroid_px=(10.0, 20.0), outline=[(8, 18), (12, 18), (12, 22), (8, 18)])
    with DetectionWriter(tmp_path / "d.geojson") as writer:
        writer.write(detection_feature(obj, 7, grid, "Nucleus"))
        writer.write(detection_feature(obj, 8, grid, "Nucleus"))
    collection = json.loads((tmp_path / "d.geojson").read_text())
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 2
    feature = collection["features"][0]
    props = feature["properties"]
    assert props["objectType"] == "detection" and props["classification"]["name"] == "Nucleus"
    assert feature["geometry"]["coordinates"][0][0] == [16.0, 36.0]  # × 2 to level 0
    assert props["measurements"]["Area µm^2"] == pytest.approx(40 * 0.25)
    assert props["measurements"]["Centroid X px"] == 20.0 and props["measurements"]["Centroid Y µm"] == 10.0


def test_label_image_records_its_scale_and_pastes_tiles(tmp_path: Path) -> None:
    grid = make_grid((400, 200), level0_mpp=0.25, working_mpp=0.5, tile_px=128, halo_px=16)
    labels = np.zeros((10, 10), np.uint16)
    labels[2:5, 2:5], labels[6:9, 6:9] = 1, 2
    with LabelImageWriter(tmp_path / "labels.zarr", grid, "Nucleus") as writer:
        assert writer.paste(TileResult(0, (50, 30), labels), first_id=11) == [1, 2]
        writer.flush_above(100)  # written out: a later paste over it reads it back
        assert writer.paste(TileResult(1, (51, 30), labels), first_id=13) == []  # the same two, seen again
    array = zarr.open_array(str(tmp_path / "labels.zarr"), mode="r")
    assert array.shape == (100, 200) and array.attrs["scale_to_level0"] == 2.0
    assert set(np.unique(array[:])) == {0, 11, 12} and array[33, 53] == 11


def test_tissue_annotation_is_a_multipolygon_in_level0_pixels() -> None:
    mask = np.zeros((20, 20), bool)
    mask[2:6, 2:6] = True
    collection = tissue_feature_collection(mask, mask_mpp=8.0, level0_mpp=0.5, area_mm2=0.001)
    (feature,) = collection["features"]
    assert feature["properties"]["objectType"] == "annotation"
    xs = [x for x, _ in feature["geometry"]["coordinates"][0][0]]
    assert min(xs) == 2 * 16 and max(xs) == 6 * 16
