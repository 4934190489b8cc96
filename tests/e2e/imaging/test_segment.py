"""The segmentation task's plain function with the real brightfield_nuclei weights on a real crop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.e2e.imaging.conftest import RealTiles
from tests.support.agreement import match_instances
from wfsched.exceptions import JobError, ModelNotFoundError
from wfsched.imaging.models import resolve_model
from wfsched.imaging.segment import (
    SegmentSpec,
    infer_batch,
    load_model,
    model_info,
    normalise_percentiles,
    segment_tiles_local,
)
from wfsched.imaging.slide import inspect_slide, working_mpp
from wfsched.imaging.stitch import keep_core_objects
from wfsched.imaging.tiling import all_tiles, make_grid


def test_tiles_yield_whole_nuclei_inside_their_cores(real_crop: Path, nuclei_model: Path) -> None:
    info = inspect_slide(real_crop)
    model = model_info(str(nuclei_model))
    assert model.pixel_size_um == 0.5 and not model.cells_and_nuclei
    grid = make_grid((info.width_px, info.height_px), info.mpp, working_mpp(info, 0.5), tile_px=512, halo_px=96)
    tiles = all_tiles(grid)
    results = segment_tiles_local(SegmentSpec(info, grid, str(nuclei_model)), tiles[:2], device="cpu").results
    assert [r.tile_index for r in results] == [0, 1]
    for tile, result in zip(tiles, results, strict=False):
        assert len(result.objects) > 5  # cores are the tile less its halo: 320 × 320 px here
        assert int(result.labels.max()) == len(result.objects)
        areas_um2 = np.array([o.area_px for o in result.objects]) * grid.working_mpp**2
        assert 5 < np.median(areas_um2) < 150  # nuclei, not tissue blobs or noise
        x, y, w, h = tile.core
        assert all(x <= o.centroid_px[0] < x + w and y <= o.centroid_px[1] < y + h for o in result.objects)


def test_model_is_loaded_once_per_process(nuclei_model: Path) -> None:
    assert load_model(str(nuclei_model), "cpu") is load_model(str(nuclei_model), "cpu")


def test_missing_or_bad_models_fail_clearly(tmp_path: Path, nuclei_model: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="wfsched fetch"):
        resolve_model("brightfield_nuclei", tmp_path)
    with pytest.raises(ModelNotFoundError, match="unknown model"):
        resolve_model("no_such_model", tmp_path)
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(str(tmp_path / "x.pt"), tmp_path, [tmp_path])
    assert resolve_model(str(nuclei_model), tmp_path, [nuclei_model.parent]) == nuclei_model.resolve()
    # Loading TorchScript runs code: a .pt outside the cache and the data roots is refused.
    with pytest.raises(ModelNotFoundError, match="outside the model cache and the data roots"):
        resolve_model(str(nuclei_model), tmp_path)
    (tmp_path / "models").mkdir()
    with pytest.raises(ModelNotFoundError, match="unknown model"):
        resolve_model("../../etc", tmp_path)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not torchscript")
    with pytest.raises(JobError, match="not a TorchScript"):
        load_model(str(junk), "cpu")


def test_batched_normalisation_equals_instansegs_per_image(real_tiles: RealTiles) -> None:
    from instanseg.utils.utils import percentile_normalize

    pixels = torch.from_numpy(np.stack(real_tiles.windows)).permute(0, 3, 1, 2)
    ours = normalise_percentiles(pixels)
    for image, normalised in zip(pixels, ours, strict=True):
        expected = percentile_normalize(image.float().clone())
        assert torch.allclose(normalised, expected, atol=1e-5)


def test_tiles_batched_through_the_model_give_the_per_tile_labels(real_tiles: RealTiles, nuclei_model: Path) -> None:
    batched = infer_batch(load_model(str(nuclei_model), "cpu"), real_tiles.windows, "nuclei")
    for ours, alone in zip(batched, real_tiles.labels, strict=True):
        agreement = match_instances(alone, ours, iou_threshold=0.5)
        assert agreement.matched_fraction >= 0.99 and abs(agreement.count_difference) <= 0.01


def test_a_task_reports_the_seconds_of_each_stage(real_crop: Path, real_tiles: RealTiles, nuclei_model: Path) -> None:
    # Forward batches of 3 and 1, both in the model at once (two model threads, as on a GPU).
    spec = SegmentSpec(
        inspect_slide(real_crop), real_tiles.grid, str(nuclei_model), forward_batch_tiles=3, forward_streams=2
    )
    batch = segment_tiles_local(spec, real_tiles.tiles, device="cpu")
    assert [r.tile_index for r in batch.results] == [t.index for t in real_tiles.tiles]
    for result, labels, tile in zip(batch.results, real_tiles.labels, real_tiles.tiles, strict=True):
        alone = keep_core_objects(labels, tile, real_tiles.grid)
        assert abs(len(result.objects) - len(alone.objects)) <= 1
    assert set(batch.stage_s) == {"decode", "transfer", "forward", "postprocess", "wall"}
    assert all(batch.stage_s[s] > 0 for s in ("decode", "forward", "postprocess", "wall"))
    assert (batch.device, batch.forward_batch_tiles, batch.forward_streams) == ("cpu", 3, 2)


def test_a_short_batch_padded_to_the_batch_size_gives_the_same_labels(
    real_tiles: RealTiles, nuclei_model: Path
) -> None:
    predictor = load_model(str(nuclei_model), "cpu")
    crops = [window[:192, :192].copy() for window in real_tiles.windows[:2]]
    padded = infer_batch(predictor, crops, "nuclei", pad_to=4)  # one input shape for every batch
    assert len(padded) == 2
    for ours, crop in zip(padded, crops, strict=True):
        assert (ours == infer_batch(predictor, [crop], "nuclei")[0]).all()
