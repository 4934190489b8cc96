"""Pipeline benchmark: InstanSeg's own whole-slide inference against a cell_segmentation job through the service.

One run, one machine, one slide (`cmu_small_region.svs`, fetched by `wfsched fetch`), one model
(`brightfield_nuclei`):

1. InstanSeg: `InstanSeg.eval_whole_slide_image` with its defaults (512 px tiles, 80 px overlap
   plus a 20 px detection margin, every tile including empty glass), as in the agreement test.
   Timed around that call only: the model is loaded before the clock starts.
2. wfsched: the real service started in this process (local Ray, Serve over HTTP, SQLite), one
   workflow with one `cell_segmentation` job submitted over HTTP with X-User-ID; the job computes
   its own tissue mask. Timed from just before the POST to the job's `finished_at` (cold: Ray
   workers start and load the model inside this time), and as the job's own started → finished.

Then the agreement figures of the agreement test, computed the same way (wfsched/imaging/agreement.py)
from InstanSeg's label image and the job's `labels.zarr`.

    python bench/pipeline.py [--device cpu|cuda] [--tile-size-px 512] [--batch-size 4]
                             [--num-gpus-per-task 0] [--out results.json]

A benchmark, not a test: it prints figures and asserts nothing about them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import zarr
from PIL import Image

from tests.support.service import ROOT, free_port, wait_healthy
from wfsched import server
from wfsched.assets import fetch_assets
from wfsched.client import Client
from wfsched.config import Settings
from wfsched.imaging.agreement import keep_in_mask, match_instances, resize_labels, run_reference
from wfsched.imaging.pipeline import LABELS_NAME
from wfsched.jobs.cell_segmentation import CellSegmentationParams
from wfsched.jobs.tissue_mask import MASK_NAME
from wfsched.paths import job_output_dir

MODEL = "brightfield_nuclei"
USER = "bench-pipeline"
JOB_ID = "cells"
# The model's own pixel size (0.5 µm/px); see the docstring of run_reference for why it is passed.
REFERENCE_PIXEL_SIZE_UM = 0.5
IOU_THRESHOLD = 0.5
# The targets of issue 3: at least 1.5× faster on a 2-core CPU, with the agreement test's figures.
TARGET_SPEED_RATIO = 1.5
TARGET_COUNT_DIFFERENCE = 0.03
TARGET_MATCHED_FRACTION = 0.90

RESTRICTION = (
    f"InstanSeg is given pixel_size={REFERENCE_PIXEL_SIZE_UM} µm/px (the model's; the slide says 0.499, within "
    "the 1 % at which neither pipeline resamples), so it skips its 513 → 512 px nearest-neighbour squeeze "
    "and both see identical pixels. Counts and matching are restricted to tissue: only instances whose "
    "centroid lies in the job's own tissue mask (tissue_mask.png) count, on both sides; on glass InstanSeg's "
    "per-tile normalisation turns JPEG noise into thousands of false nuclei, and wfsched skips glass by design."
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = CellSegmentationParams.model_validate({})
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where both pipelines run")
    parser.add_argument("--tile-size-px", type=int, default=defaults.tile_size_px, help="the job's tile_size_px")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="the job's batch_size")
    parser.add_argument(
        "--num-gpus-per-task",
        type=float,
        default=None,
        help="GPUs per segmentation task (WFSCHED_NUM_GPUS_PER_TASK); default 0 on cpu, 0.5 on cuda",
    )
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.num_gpus_per_task is None:
        args.num_gpus_per_task = 0.5 if args.device == "cuda" else 0.0
    if args.device == "cuda" and args.num_gpus_per_task <= 0:
        parser.error("--device cuda needs --num-gpus-per-task > 0: Ray hands a GPU only to tasks that ask")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    machine = describe_machine(args.device)
    # The cache the service's job resolves the model in (WFSCHED_CACHE_DIR, else the user cache).
    assets = fetch_assets(Settings.from_env().cache_dir)
    slide, model_path = assets.sample_slide, assets.models[MODEL]
    workdir = Path(tempfile.mkdtemp(prefix="wfsched-bench-pipeline-"))
    print(f"slide {slide.name}, model {MODEL}, device {args.device}, {machine['cpu_count']} CPUs", flush=True)
    print(f"load average before: {machine['load_average']}", flush=True)

    # InstanSeg first, before Ray exists, so nothing of ours runs while it is timed.
    print("running InstanSeg.eval_whole_slide_image ...", flush=True)
    reference, reference_s = run_reference(
        slide, model_path, workdir / "reference", pixel_size_um=REFERENCE_PIXEL_SIZE_UM, device=args.device
    )
    print(f"  {reference_s:.1f} s", flush=True)
    machine["load_average_after_instanseg"] = [round(x, 2) for x in os.getloadavg()]

    print("running the cell_segmentation job through the service ...", flush=True)
    job, output_dir = run_service_job(args, slide, workdir / "service")
    figures = compare(args, machine, reference, reference_s, job, output_dir)
    report(figures)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {args.out}")


def describe_machine(device: str) -> dict[str, Any]:
    import torch

    machine: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch.cuda.is_available() is False (a CPU build of torch, or no driver)")
        machine["gpu"] = torch.cuda.get_device_name(0)
        machine["gpu_count"] = torch.cuda.device_count()
    return machine


def ray_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {
        "num_cpus": os.cpu_count(),
        "include_dashboard": False,
        # Worker logs are not streamed here: printing them would load the machine being measured.
        "log_to_driver": False,
        "runtime_env": {"env_vars": {"PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}},
    }
    if args.device == "cpu":
        # GPU-shaped tasks (a fraction > 0) schedule on one logical GPU; the code then runs on the CPU.
        options["num_gpus"] = 1 if args.num_gpus_per_task > 0 else 0
    return options


def run_service_job(args: argparse.Namespace, slide: Path, base: Path) -> tuple[dict[str, Any], Path]:
    """Start the service, submit one cell_segmentation job over HTTP, wait; the job record and its folder."""
    settings = Settings.from_env(
        port=free_port(),
        db=base / "wfsched.db",
        data_roots=(slide.parent,),
        results_dir=base / "results",
        num_gpus_per_task=args.num_gpus_per_task,
    )
    server.start(settings, ray_options(args))
    url = f"http://{settings.host}:{settings.port}"
    client = Client(url, USER)
    try:
        wait_healthy(url)
        workflow = {
            "name": "bench pipeline",
            "jobs": [
                {
                    "job_id": JOB_ID,
                    "job_type": "cell_segmentation",
                    "image_path": str(slide),
                    "params": {"model": MODEL, "tile_size_px": args.tile_size_px, "batch_size": args.batch_size},
                }
            ],
        }
        submitted_at = time.time()
        workflow_id = client.submit(workflow)["workflow_id"]
        # Slow polling: the benchmark's own requests must not eat the CPU it measures.
        finished = client.wait(workflow_id, poll_s=1.0, timeout_s=3600)
        job = next(j for j in finished["jobs"] if j["job_id"] == JOB_ID)
        if job["status"] != "succeeded":
            raise SystemExit(f"the cell_segmentation job {job['status']}: {job.get('error')}")
        job["submitted_at"] = submitted_at
        return job, job_output_dir(settings.results_dir, USER, workflow_id, JOB_ID)
    finally:
        client.close()
        server.stop()


def compare(
    args: argparse.Namespace,
    machine: dict[str, Any],
    reference: np.ndarray,
    reference_s: float,
    job: dict[str, Any],
    output_dir: Path,
) -> dict[str, Any]:
    """The timings and the agreement figures, computed as tests/unit/imaging/test_agreement.py does."""
    ours = np.asarray(zarr.open_array(str(output_dir / LABELS_NAME), mode="r")[:])
    tissue = np.asarray(Image.open(output_dir / MASK_NAME)) > 0
    reference = resize_labels(reference, ours.shape)
    whole = match_instances(reference, ours, iou_threshold=IOU_THRESHOLD)
    on_tissue = match_instances(
        keep_in_mask(reference, tissue), keep_in_mask(ours, tissue), iou_threshold=IOU_THRESHOLD
    )
    submit_to_finish_s = job["finished_at"] - job["submitted_at"]
    job_s = job["finished_at"] - job["started_at"]
    summary = job["result"]
    return {
        "slide": "cmu_small_region.svs",
        "model": MODEL,
        "device": args.device,
        "machine": machine,
        "params": {
            "tile_size_px": args.tile_size_px,
            "batch_size": args.batch_size,
            "num_gpus_per_task": args.num_gpus_per_task,
        },
        "instanseg_s": round(reference_s, 2),
        "wfsched_submit_to_finish_s": round(submit_to_finish_s, 2),
        "wfsched_job_s": round(job_s, 2),
        "wfsched_segment_s": summary.get("segment_s"),
        "wfsched_stitch_s": summary.get("stitch_s"),
        "speed_ratio": round(reference_s / submit_to_finish_s, 3),
        "speed_ratio_job": round(reference_s / job_s, 3),
        "tiles": {k: summary.get(k) for k in ("tiles_total", "tiles_segmented", "tiles_skipped_background")},
        "restriction": RESTRICTION,
        "reference_pixel_size_um": REFERENCE_PIXEL_SIZE_UM,
        "iou_threshold": IOU_THRESHOLD,
        "whole_slide_counts": {"instanseg": whole.reference_count, "wfsched": whole.our_count},
        "on_tissue_counts": {"instanseg": on_tissue.reference_count, "wfsched": on_tissue.our_count},
        "count_difference": round(on_tissue.count_difference, 5),
        "matched_fraction": round(on_tissue.matched_fraction, 5),
        "targets": {
            "speed_ratio": TARGET_SPEED_RATIO,
            "count_difference": TARGET_COUNT_DIFFERENCE,
            "matched_fraction": TARGET_MATCHED_FRACTION,
        },
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def report(f: dict[str, Any]) -> None:
    tiles = f["tiles"]
    print()
    print(f"comparison: {f['restriction']}")
    print(
        f"whole slide incl. glass:          InstanSeg {f['whole_slide_counts']['instanseg']}, "
        f"wfsched {f['whole_slide_counts']['wfsched']}"
    )
    print(
        f"InstanSeg eval_whole_slide_image: {f['instanseg_s']:8.1f} s  "
        f"{f['on_tissue_counts']['instanseg']} nuclei on tissue"
    )
    print(
        f"wfsched job, submit → finished:   {f['wfsched_submit_to_finish_s']:8.1f} s  "
        f"{f['on_tissue_counts']['wfsched']} nuclei on tissue  (through the service, cold workers)"
    )
    print(
        f"wfsched job, started → finished:  {f['wfsched_job_s']:8.1f} s  (segment {f['wfsched_segment_s']} s, "
        f"stitch {f['wfsched_stitch_s']} s; {tiles['tiles_segmented']} of {tiles['tiles_total']} tiles, "
        f"{f['params']['tile_size_px']} px, batch {f['params']['batch_size']}, "
        f"{f['params']['num_gpus_per_task']} GPU/task)"
    )
    print(
        f"speed ratio (InstanSeg / ours):   {f['speed_ratio']:8.2f} ×  (submit → finished; "
        f"{f['speed_ratio_job']:.2f} × against the job's own time; target ≥ {TARGET_SPEED_RATIO} ×)"
    )
    print(f"count difference on tissue:       {f['count_difference']:8.2%}  (target ≤ {TARGET_COUNT_DIFFERENCE:.0%})")
    print(
        f"InstanSeg nuclei matched at IoU ≥ {f['iou_threshold']}: {f['matched_fraction']:.2%}  "
        f"(target ≥ {TARGET_MATCHED_FRACTION:.0%})"
    )
    print(
        f"load average (1, 5, 15 min) before / after InstanSeg / after ours: {f['machine']['load_average']} / "
        f"{f['machine']['load_average_after_instanseg']} / {f['load_average_after']}  "
        f"({f['machine']['cpu_count']} CPUs)"
    )


if __name__ == "__main__":
    main()
