from __future__ import annotations

import numpy as np
import pytest

from wfsched.exceptions import JobError
from wfsched.imaging.tiling import all_tiles, batches, make_grid, plan_tiles


@pytest.mark.parametrize(("width_px", "height_px"), [(2220, 2967), (1024, 1024), (300, 5000), (1025, 833)])
def test_cores_partition_the_grid_and_windows_hold_their_halo(width_px: int, height_px: int) -> None:
    grid = make_grid((width_px, height_px), 0.5, 0.5, tile_px=1024, halo_px=96)
    coverage = np.zeros((height_px, width_px), np.int32)
    for tile in all_tiles(grid):
        x, y, w, h = tile.core
        coverage[y : y + h, x : x + w] += 1
        wx, wy, ww, wh = tile.window
        assert wx <= max(0, x - 96) and wy <= max(0, y - 96)
        assert wx + ww >= min(width_px, x + w + 96) and wy + wh >= min(height_px, y + h + 96)
        assert wx >= 0 and wx + ww <= width_px and wy >= 0 and wy + wh <= height_px
        # Windows keep the full tile size wherever the slide is large enough: they stack into batches.
        assert ww == min(1024, width_px) and wh == min(1024, height_px)
    assert (coverage == 1).all()


def test_grid_is_at_the_working_pixel_size() -> None:
    grid = make_grid((4000, 2000), level0_mpp=0.25, working_mpp=0.5, tile_px=512, halo_px=64)
    assert (grid.width_px, grid.height_px) == (2000, 1000)
    assert grid.scale_to_level0 == 0.5 / 0.25
    with pytest.raises(ValueError, match="halo"):
        make_grid((100, 100), 0.5, 0.5, tile_px=128, halo_px=64)


def test_plan_skips_tiles_without_tissue() -> None:
    grid = make_grid((4096, 4096), 0.5, 0.5, tile_px=1024, halo_px=64)
    mask_mpp = 8.0  # 256 × 256 mask pixels over the slide
    mask = np.zeros((256, 256), bool)
    mask[10:20, 10:20] = True  # tissue only in the top-left corner
    planned = plan_tiles(grid, mask, mask_mpp)
    assert len(all_tiles(grid)) == 25
    assert [t.index for t in planned] == [0]
    assert len(plan_tiles(grid, None)) == 25


def test_batches_split_in_order() -> None:
    tiles = all_tiles(make_grid((3000, 1000), 0.5, 0.5, tile_px=1024, halo_px=64))
    groups = batches(tiles, 2)
    assert [t.index for g in groups for t in g] == [t.index for t in tiles]
    assert all(len(g) <= 2 for g in groups)


def test_a_grid_of_absurd_size_is_a_job_error_naming_the_limit() -> None:
    """100 µm/px claimed for a 0.5 µm/px slide asks for ~10⁶ tiles: refused before planning any."""
    with pytest.raises(JobError, match="over the limit of 250000"):
        make_grid((2220, 2967), level0_mpp=100.0, working_mpp=0.5, tile_px=512, halo_px=64)
