"""The real InstanSeg weights and sample slide (fetched into the user cache once), and crops and tiles of it.

These tests need the released model, so they live with the e2e tests: the unit tests download nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tests.support.slides import crop_of_slide
from wfsched.cli.fetch import FetchedAssets, fetch_assets
from wfsched.config import Settings
from wfsched.imaging.segment import infer_labels, load_model
from wfsched.imaging.slide import inspect_slide, open_slide, read_window_at_mpp, working_mpp
from wfsched.imaging.tiling import Tile, TileGrid, all_tiles, make_grid

# A 768 × 640 px crop of cmu_small_region.svs through dense epidermis: ~300 nuclei, a few seconds.
REAL_CROP_ORIGIN_PX = (900, 1200)
REAL_CROP_SIZE_PX = (768, 640)


@pytest.fixture(scope="session")
def assets() -> FetchedAssets:
    """The released models and the sample slide, in the user cache (downloaded on first use only)."""
    return fetch_assets(Settings().cache_dir)


@pytest.fixture(scope="session")
def nuclei_model(assets: FetchedAssets) -> Path:
    return assets.models["brightfield_nuclei"]


@pytest.fixture(scope="session")
def sample_slide(assets: FetchedAssets) -> Path:
    return assets.sample_slide


@pytest.fixture(scope="session")
def real_crop(sample_slide: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A crop of the real slide as a pyramidal JPEG TIFF with the source's pixel size."""
    dest = tmp_path_factory.mktemp("slides") / "crop.tif"
    return crop_of_slide(sample_slide, dest, REAL_CROP_ORIGIN_PX, REAL_CROP_SIZE_PX)


@dataclass(frozen=True)
class RealTiles:
    """The four 512 px tiles of the real crop: the grid, the tiles, their RGB windows and labels."""

    grid: TileGrid
    tiles: list[Tile]
    windows: list[npt.NDArray[np.uint8]]
    labels: list[npt.NDArray[np.int32]]


@pytest.fixture(scope="session")
def real_tiles(real_crop: Path, nuclei_model: Path) -> RealTiles:
    """Labels of the real model on real tiles, one tile per model call (the per-tile path)."""
    info = inspect_slide(real_crop)
    grid = make_grid((info.width_px, info.height_px), info.mpp, working_mpp(info, 0.5), tile_px=512, halo_px=64)
    tiles = all_tiles(grid)
    slide = open_slide(real_crop)
    windows = [read_window_at_mpp(slide, info, tile.window, grid.working_mpp) for tile in tiles]
    predictor = load_model(str(nuclei_model), "cpu")
    return RealTiles(grid, tiles, windows, [infer_labels(predictor, window, "nuclei") for window in windows])
