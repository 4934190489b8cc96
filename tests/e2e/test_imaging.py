"""The imaging job types through the real service: real slide, real weights, Ray tasks, artifacts."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import wfsched
from tests.support.service import Api
from tests.support.slides import crop_of_slide, write_corrupt
from wfsched.cli.fetch import fetch_assets
from wfsched.config import Settings

# Dense epidermis of cmu_small_region.svs: a few hundred nuclei, seconds on a CPU.
CROP_ORIGIN_PX, CROP_SIZE_PX = (900, 1200), (768, 640)


@pytest.fixture(scope="module")
def slides(data_dir: Path) -> dict[str, Path]:
    sample = fetch_assets(Settings().cache_dir).sample_slide
    folder = data_dir / "imaging"
    folder.mkdir(exist_ok=True)
    crop = crop_of_slide(sample, folder / "crop.tif", CROP_ORIGIN_PX, CROP_SIZE_PX)
    not_a_slide = folder / "notes.svs"
    not_a_slide.write_text("this is not a slide")
    return {
        "crop": crop,
        "corrupt": write_corrupt(crop, folder / "corrupt.tif"),
        "not_a_slide": not_a_slide,
        "missing": folder / "missing.svs",
        "sample": Path(shutil.copy(sample, folder / sample.name)),
    }


@pytest.fixture(scope="module")
def data_dir(service_settings: Settings) -> Path:
    return service_settings.data_roots[0]


def job(job_id: str, job_type: str, image: Path, branch: str, **extra: Any) -> dict[str, Any]:
    return {"job_id": job_id, "job_type": job_type, "image_path": str(image), "branch": branch, **extra}


def test_tissue_and_cells_on_a_real_slide_with_artifacts(
    make_user: Callable[[str], Api], slides: dict[str, Path]
) -> None:
    lab, other = make_user("lab"), make_user("other")
    jobs = [
        job("tissue", "tissue_mask", slides["crop"], "b1"),
        job(
            "cells",
            "cell_segmentation",
            slides["crop"],
            "b1",
            depends_on=["tissue"],
            params={"tile_size_px": 256, "halo_px": 64},
        ),
        job("bad-slide", "tissue_mask", slides["corrupt"], "b2"),
        job("not-a-slide", "tissue_mask", slides["not_a_slide"], "b2"),
        job("missing", "cell_segmentation", slides["missing"], "b3"),
    ]
    workflow_id = lab.submit(jobs)["workflow_id"]
    workflow = lab.wait(workflow_id, timeout_s=600)
    by_id = {j["job_id"]: j for j in workflow["jobs"]}
    assert by_id["tissue"]["status"] == by_id["cells"]["status"] == "succeeded", by_id
    for broken in ("bad-slide", "not-a-slide", "missing"):
        assert by_id[broken]["status"] == "failed"
        assert by_id[broken]["error"], broken
    assert "missing.svs" in by_id["missing"]["error"]
    assert workflow["status"] == "failed"

    tissue, cells = by_id["tissue"]["result"], by_id["cells"]["result"]
    assert 0 < tissue["tissue_fraction"] <= 1 and tissue["tissue_area_mm2"] > 0
    assert cells["tissue_source"] == "upstream:tissue"
    assert cells["cell_count"] > 100
    assert cells["cells_per_mm2"] == pytest.approx(cells["cell_count"] / cells["tissue_area_mm2"], rel=1e-3)
    assert by_id["cells"]["progress_total"] > 1
    assert by_id["cells"]["progress_done"] == by_id["cells"]["progress_total"]

    base = f"/api/workflows/{workflow_id}/jobs"
    detections = lab.request("GET", f"{base}/cells/artifacts/detections.geojson")
    assert detections.status_code == 200
    assert detections.headers["content-type"].startswith("application/geo+json")
    collection = detections.json()
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == cells["cell_count"]
    feature = collection["features"][0]
    assert feature["properties"]["objectType"] == "detection"
    xs = [x for ring in feature["geometry"]["coordinates"] for x, _ in ring]
    # Level-0 pixel coordinates of the crop: inside its bounds.
    assert min(xs) >= 0 and max(xs) <= CROP_SIZE_PX[0]
    mask = lab.request("GET", f"{base}/tissue/artifacts/tissue_mask.png")
    assert mask.headers["content-type"] == "image/png" and mask.content[:8] == b"\x89PNG\r\n\x1a\n"
    labels = lab.request("GET", f"{base}/cells/artifacts/labels.zarr")
    assert labels.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(labels.content)).namelist()
    assert any(name.startswith("labels.zarr/") for name in names)
    summary = json.loads(lab.request("GET", f"{base}/cells/artifacts/summary.json").content)
    assert summary["cell_count"] == cells["cell_count"]

    for name in ("detections.geojson", "labels.zarr", "summary.json"):
        assert other.request("GET", f"{base}/cells/artifacts/{name}").status_code == 404
    for name in ("..%2F..%2Fwfsched.db", "nothing.json", "%2Fetc%2Fpasswd"):
        assert lab.request("GET", f"{base}/cells/artifacts/{name}").status_code == 404
    # The CLI downloads every artifact of every job.
    out = slides["crop"].parent / f"results-{lab.user}"
    downloaded = wfsched(lab, "results", workflow_id, "--dest", str(out))
    assert downloaded.returncode == 0, downloaded.stderr
    files = {p.name for p in (out / workflow_id).rglob("*") if p.is_file()}
    assert {"detections.geojson", "labels.zarr.zip", "summary.json", "tissue_mask.png", "thumbnail.png"} <= files


def test_cancelling_a_running_segmentation_stops_its_ray_tasks(
    make_user: Callable[[str], Api], slides: dict[str, Path]
) -> None:
    lab = make_user("cancel-seg")
    jobs = [
        job(
            "cells",
            "cell_segmentation",
            slides["sample"],
            "b1",
            params={"tile_size_px": 256, "halo_px": 64, "batch_size": 1, "max_batches_in_flight": 2},
        )
    ]
    workflow_id = lab.submit(jobs)["workflow_id"]
    lab.wait(workflow_id, lambda wf: wf["jobs"][0]["progress_done"] > 0, timeout_s=300)
    assert lab.request("POST", f"/api/workflows/{workflow_id}/cancel").status_code == 200
    workflow = lab.wait(workflow_id, timeout_s=60)
    cells = workflow["jobs"][0]
    assert workflow["status"] == "cancelled" and cells["status"] == "cancelled"
    assert cells["progress_done"] < cells["progress_total"]
