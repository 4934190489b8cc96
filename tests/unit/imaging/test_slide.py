from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.slides import write_corrupt, write_truncated
from wfsched.exceptions import SlideReadError
from wfsched.imaging.slide import (
    inspect_slide,
    open_slide,
    read_window_at_mpp,
    working_mpp,
)


def test_missing_and_non_slide_files_are_slide_read_errors(tmp_path: Path) -> None:
    with pytest.raises(SlideReadError, match="does not exist"):
        open_slide(tmp_path / "nope.svs")
    text = tmp_path / "notes.svs"
    text.write_text("not a slide")
    with pytest.raises(SlideReadError, match="cannot be opened"):
        open_slide(text)


def test_truncated_and_corrupt_slides_are_slide_read_errors(make_slide: Callable[..., Path], tmp_path: Path) -> None:
    source = make_slide()
    for broken in (
        write_truncated(source, tmp_path / "cut.tif", 0.4),
        write_corrupt(source, tmp_path / "bad.tif"),
    ):
        with pytest.raises(SlideReadError):
            info = inspect_slide(broken)
            slide = open_slide(broken)
            read_window_at_mpp(slide, info, (0, 0, info.width_px, info.height_px), info.mpp)


def test_pixel_size_comes_from_metadata_or_the_override(make_slide: Callable[..., Path]) -> None:
    assert inspect_slide(make_slide("with.tif", mpp=0.25)).mpp == pytest.approx(0.25)
    without = make_slide("without.tif", mpp=None)
    with pytest.raises(SlideReadError, match="pixel_size_um"):
        inspect_slide(without)
    assert inspect_slide(without, override_mpp=0.5).mpp == 0.5


def test_read_window_resamples_from_the_best_level(make_slide: Callable[..., Path]) -> None:
    path = make_slide(height_px=1024, width_px=1536, mpp=0.25, levels=3)
    info = inspect_slide(path)
    assert info.level_downsamples == (1.0, 2.0, 4.0)
    region = read_window_at_mpp(open_slide(path), info, (10, 20, 300, 200), target_mpp=0.5)
    assert region.shape == (200, 300, 3) and region.dtype.name == "uint8"


def test_working_mpp_keeps_a_level_within_one_percent_of_the_model(make_slide: Callable[..., Path]) -> None:
    info = inspect_slide(make_slide(mpp=0.499))
    assert working_mpp(info, 0.5) == pytest.approx(0.499)
    assert working_mpp(info, 1.0) == pytest.approx(0.998)  # level 1 of a 0.499 µm/px slide
    assert working_mpp(info, 0.7) == 0.7
