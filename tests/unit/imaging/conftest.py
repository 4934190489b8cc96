"""Fixtures shared by the imaging and job tests: real weights and slide (fetched once), test slides."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.slides import crop_of_slide, tissue_image, write_slide
from wfsched.assets import FetchedAssets, fetch_assets
from wfsched.config import Settings

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


@pytest.fixture
def make_slide(tmp_path: Path) -> Callable[..., Path]:
    """Write a synthetic slide: make_slide(name, height_px=, width_px=, blobs=, mpp=, levels=)."""

    def make(
        name: str = "slide.tif",
        height_px: int = 1024,
        width_px: int = 1536,
        blobs: list[tuple[int, int, int]] | None = None,
        mpp: float | None = 0.5,
        levels: int = 3,
    ) -> Path:
        image = tissue_image(height_px, width_px, blobs=blobs)
        return write_slide(tmp_path / name, image, mpp=mpp, levels=levels)

    return make
