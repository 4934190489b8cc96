from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pydantic
import pytest

from wfsched.config import Settings
from wfsched.exceptions import SlideReadError
from wfsched.jobs.registry import JobContext
from wfsched.jobs.tissue_mask import JOB_TYPES, TissueMaskParams, run


def _ctx(image: Path, out: Path, **params: object) -> JobContext:
    return JobContext(
        workflow_id="w",
        job_id="tissue",
        user_id="u",
        image_path=image,
        params=TissueMaskParams(**params),
        settings=Settings(),
        output_dir=out,
    )


def test_writes_mask_annotation_and_area(make_slide: Callable[..., Path], tmp_path: Path) -> None:
    image = make_slide(height_px=2048, width_px=2048, blobs=[(1024, 1024, 600)], mpp=0.5)
    result = run(_ctx(image, tmp_path / "out"))
    assert result["artifacts"] == ["tissue_mask.png", "tissue.geojson", "thumbnail.png"]
    assert result["slide_width_px"] > 0 and result["slide_pixel_size_um"] > 0
    assert all((tmp_path / "out" / name).is_file() for name in result["artifacts"])
    assert result["tissue_area_mm2"] == pytest.approx(3.14159 * 0.3**2, rel=0.05)
    assert 0 < result["tissue_fraction"] < 1 and 7.5 <= result["mask_pixel_size_um"] <= 10
    geojson = json.loads((tmp_path / "out" / "tissue.geojson").read_text())
    xs = [x for x, _ in geojson["features"][0]["geometry"]["coordinates"][0][0]]
    assert min(xs) == pytest.approx(424, abs=20) and max(xs) == pytest.approx(1624, abs=20)  # level-0 px
    json.dumps(result)


def test_params_are_strict_and_a_slide_without_pixel_size_fails(
    make_slide: Callable[..., Path], tmp_path: Path
) -> None:
    assert [t.name for t in JOB_TYPES] == ["tissue_mask"]
    with pytest.raises(pydantic.ValidationError):
        TissueMaskParams(min_area=1)  # type: ignore[call-arg]
    with pytest.raises(SlideReadError, match="pixel_size_um"):
        run(_ctx(make_slide(mpp=None), tmp_path / "out"))
    assert run(_ctx(make_slide("b.tif", mpp=None), tmp_path / "out2", pixel_size_um=0.5))["tissue_area_mm2"] > 0


@pytest.mark.parametrize(
    ("field", "value", "bound"),
    [
        ("pixel_size_um", 0.001, "0.05"),
        ("pixel_size_um", float("inf"), "finite"),
        ("min_object_area_um2", float("inf"), "finite"),
        ("fill_holes_area_um2", 1e300, "10000000000"),
        ("closing_radius_um", float("nan"), "finite"),
    ],
)
def test_numbers_are_finite_and_bounded_with_the_bound_in_the_error(field: str, value: float, bound: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=bound):
        TissueMaskParams.model_validate({field: value})
