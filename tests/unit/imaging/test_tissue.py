from __future__ import annotations

import math
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from wfsched.imaging.slide import inspect_slide, open_slide
from wfsched.imaging.tissue import TissueOptions, detect_tissue, read_thumbnail, tissue_mask_of


def test_thumbnail_is_near_8_um_per_pixel(make_slide: Callable[..., Path]) -> None:
    path = make_slide(height_px=2048, width_px=3072, mpp=0.5, levels=3)
    rgb, mpp = read_thumbnail(open_slide(path), inspect_slide(path))
    assert 7.5 <= mpp <= 10.0
    assert rgb.shape == (round(2048 * 0.5 / mpp), round(3072 * 0.5 / mpp), 3)


def test_tissue_area_matches_the_drawn_tissue(make_slide: Callable[..., Path]) -> None:
    radius_px = 700
    path = make_slide(height_px=2048, width_px=4096, blobs=[(1024, 1024, radius_px)], mpp=0.5)
    tissue = tissue_mask_of(open_slide(path), inspect_slide(path), TissueOptions())
    expected_mm2 = math.pi * (radius_px * 0.5 / 1000) ** 2
    assert tissue.area_mm2 == pytest.approx(expected_mm2, rel=0.05)
    assert tissue.fraction == pytest.approx(expected_mm2 / (2048 * 4096 * 0.25e-6), rel=0.05)
    # The right half of the slide is empty glass.
    assert not tissue.mask[:, tissue.mask.shape[1] // 2 + 5 :].any()


def test_specks_below_min_area_are_dropped_and_holes_filled() -> None:
    mpp = 8.0
    rgb = np.full((200, 200, 3), 240, np.uint8)
    rgb[20:120, 20:120] = (200, 120, 170)  # 800 µm square of tissue
    rgb[60:64, 60:64] = 240  # 32 µm hole
    rgb[180:183, 180:183] = (200, 120, 170)  # 24 µm speck
    tissue = detect_tissue(rgb, mpp, TissueOptions(min_object_area_um2=5_000, fill_holes_area_um2=5_000))
    assert tissue.mask[22:118, 22:118].all()  # hole filled; the blur only rounds the corners
    assert not tissue.mask[170:, 170:].any()


def test_dark_background_finds_bright_tissue() -> None:
    rgb = np.full((100, 100, 3), 10, np.uint8)
    rgb[30:70, 30:70] = 180
    tissue = detect_tissue(rgb, 8.0, TissueOptions(dark_background=True, min_object_area_um2=0))
    assert tissue.mask[30:70, 30:70].all() and tissue.mask.sum() == pytest.approx(1600, rel=0.1)


def test_a_blank_slide_has_no_tissue() -> None:
    tissue = detect_tissue(np.full((50, 50, 3), 242, np.uint8), 8.0, TissueOptions())
    assert tissue.area_mm2 == 0.0 and tissue.fraction == 0.0


def test_a_tiny_claimed_pixel_size_reads_no_more_than_the_level(make_slide: Callable[..., Path]) -> None:
    """0.001 µm/px made the thumbnail average 8000-pixel blocks of padding (900 MB); now one level at most."""
    path = make_slide(height_px=512, width_px=768, mpp=0.5)
    slide, info = open_slide(path), inspect_slide(path, override_mpp=0.001)
    tracemalloc.start()  # numpy reports its buffers to tracemalloc
    try:
        rgb, _ = read_thumbnail(slide, info)
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rgb.shape[0] >= 1 and rgb.shape[1] >= 1
    # The level itself is 768 × 512 × 3 bytes (×4 as float32): allow that, refuse the 8000² padding.
    assert peak_bytes < 20 * 768 * 512 * 3
