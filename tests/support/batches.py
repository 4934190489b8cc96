"""Segmentation batches without a slide or a model, for the fan-out's tests and the fairness bench.

A row of one-pixel tiles goes through the real `run_batches` (slots, checkpoints, progress); each
batch's result is a tile result with no objects, however its task spent its time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wfsched.imaging.segment import SegmentedBatch, SegmentSpec
from wfsched.imaging.slide import SlideInfo
from wfsched.imaging.stitch import TileResult
from wfsched.imaging.tiling import Tile, all_tiles, make_grid


def row_of_tiles(n: int) -> tuple[SegmentSpec, list[Tile]]:
    """`n` tiles of a 1-pixel core (a halo of 1), in a row: a spec every batch can carry, and the tiles."""
    grid = make_grid((n, 1), level0_mpp=1.0, working_mpp=1.0, tile_px=3, halo_px=1)
    slide = SlideInfo(path=Path("synthetic"), width_px=n, height_px=1, mpp=1.0, level_downsamples=(1.0,))
    return SegmentSpec(slide=slide, grid=grid, model_path="none"), all_tiles(grid)


def empty_batch(tiles: list[Tile], wall_s: float = 0.0) -> SegmentedBatch:
    """What a task that found nothing in `tiles` returns."""
    results = [TileResult(tile.index, tile.window[:2], np.zeros((1, 1), np.int32)) for tile in tiles]
    return SegmentedBatch(results, {"wall": wall_s})
