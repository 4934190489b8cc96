"""Tile planning: pure functions over the slide's grid at the segmentation pixel size.

The "working grid" is the slide resampled to the pixel size we segment at (the model's, or a
level's own when within 1 % of it). Cores partition the working grid; each tile's window is its
core grown by a halo on every side that is not the slide's edge. An object belongs to the tile
whose core holds its centroid (see stitch.py), so the halo must be wider than the largest object.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from wfsched.exceptions import JobError

# 250,000 cores of 384 px at 0.5 µm/px cover 96 mm × 96 mm, more than a whole glass slide; a grid
# past that comes from a wrong pixel size, and planning it alone would take GBs.
MAX_GRID_TILES = 250_000

Rect = tuple[int, int, int, int]
"""(x, y, width, height) in working-grid pixels."""


@dataclass(frozen=True)
class Tile:
    index: int
    core: Rect
    window: Rect


@dataclass(frozen=True)
class TileGrid:
    """The working grid and how tiles cover it; the same grid always yields the same tiles."""

    width_px: int
    height_px: int
    working_mpp: float
    level0_mpp: float
    tile_px: int
    halo_px: int

    @property
    def core_px(self) -> int:
        return self.tile_px - 2 * self.halo_px

    @property
    def scale_to_level0(self) -> float:
        """Level-0 pixels per working-grid pixel."""
        return self.working_mpp / self.level0_mpp

    def fingerprint(self) -> str:
        """Identifies the grid; checkpoints made on another grid are not reused."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def make_grid(
    level0_size_px: tuple[int, int], level0_mpp: float, working_mpp: float, tile_px: int, halo_px: int
) -> TileGrid:
    if tile_px <= 2 * halo_px:
        raise ValueError(f"tile_px {tile_px} must exceed twice the halo ({halo_px} px)")
    scale = level0_mpp / working_mpp
    grid = TileGrid(
        width_px=max(1, round(level0_size_px[0] * scale)),
        height_px=max(1, round(level0_size_px[1] * scale)),
        working_mpp=working_mpp,
        level0_mpp=level0_mpp,
        tile_px=tile_px,
        halo_px=halo_px,
    )
    tiles = math.ceil(grid.width_px / grid.core_px) * math.ceil(grid.height_px / grid.core_px)
    if tiles > MAX_GRID_TILES:
        raise JobError(
            f"the slide at {level0_mpp} µm/px would need {tiles} tiles, over the limit of {MAX_GRID_TILES}: "
            "check its pixel size (`pixel_size_um`) and `tile_size_px`"
        )
    return grid


def _core_starts(length_px: int, core_px: int) -> list[int]:
    return list(range(0, length_px, core_px))


def _window_span(core_start: int, core_len: int, length_px: int, tile_px: int, halo_px: int) -> tuple[int, int]:
    """Start and length of a window along one axis: the core plus halo, slid inside the slide.

    Sliding (rather than clipping) keeps every window tile_px long when the slide allows it, so
    windows stack into batches; a slid window only gains context, never loses the halo.
    """
    if length_px <= tile_px:
        return 0, length_px
    start = min(max(core_start - halo_px, 0), length_px - tile_px)
    assert start <= core_start and start + tile_px >= core_start + core_len
    return start, tile_px


def all_tiles(grid: TileGrid) -> list[Tile]:
    """Every tile of the grid, row-major; the cores partition the grid exactly."""
    tiles: list[Tile] = []
    for y in _core_starts(grid.height_px, grid.core_px):
        core_h = min(grid.core_px, grid.height_px - y)
        win_y, win_h = _window_span(y, core_h, grid.height_px, grid.tile_px, grid.halo_px)
        for x in _core_starts(grid.width_px, grid.core_px):
            core_w = min(grid.core_px, grid.width_px - x)
            win_x, win_w = _window_span(x, core_w, grid.width_px, grid.tile_px, grid.halo_px)
            tiles.append(Tile(len(tiles), (x, y, core_w, core_h), (win_x, win_y, win_w, win_h)))
    return tiles


def tissue_fraction_in(rect: Rect, mask: npt.NDArray[np.bool_], mask_px_per_grid_px: float) -> float:
    """Fraction of `rect` (working-grid pixels) that the tissue mask covers."""
    x, y, w, h = rect
    x0, y0 = math.floor(x * mask_px_per_grid_px), math.floor(y * mask_px_per_grid_px)
    x1 = max(x0 + 1, math.ceil((x + w) * mask_px_per_grid_px))
    y1 = max(y0 + 1, math.ceil((y + h) * mask_px_per_grid_px))
    patch = mask[y0:y1, x0:x1]
    return float(patch.mean()) if patch.size else 0.0


def plan_tiles(grid: TileGrid, tissue_mask: npt.NDArray[np.bool_] | None, mask_mpp: float | None = None) -> list[Tile]:
    """The tiles to segment: those whose core touches tissue (all of them without a mask).

    The mask is tested over the core grown by the halo, because a nucleus at the tissue's edge is
    kept by the tile holding its centroid, which may lie just outside the thumbnail's tissue.
    """
    tiles = all_tiles(grid)
    if tissue_mask is None:
        return tiles
    if mask_mpp is None:
        raise ValueError("mask_mpp is required with a tissue mask")
    scale = grid.working_mpp / mask_mpp
    grown = (_grow(tile.core, grid.halo_px, grid) for tile in tiles)
    return [tile for tile, rect in zip(tiles, grown, strict=True) if tissue_fraction_in(rect, tissue_mask, scale) > 0]


def _grow(rect: Rect, by_px: int, grid: TileGrid) -> Rect:
    x, y, w, h = rect
    x0, y0 = max(0, x - by_px), max(0, y - by_px)
    x1, y1 = min(grid.width_px, x + w + by_px), min(grid.height_px, y + h + by_px)
    return x0, y0, x1 - x0, y1 - y0


def batches(tiles: list[Tile], batch_size: int) -> list[list[Tile]]:
    """Consecutive tiles in groups of `batch_size`: neighbours share slide tiles when decoded."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    return [tiles[i : i + batch_size] for i in range(0, len(tiles), batch_size)]
