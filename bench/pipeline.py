"""Pipeline benchmark: InstanSeg's own whole-slide inference against wfsched's pipeline, one slide, one run.

One machine, one slide (`cmu_small_region.svs`, fetched by `wfsched fetch`), one model
(`brightfield_nuclei`). The runs (`--runs`, comma-separated, in this order):

- `instanseg`: `InstanSeg.eval_whole_slide_image` with its defaults (512 px tiles, 80 px overlap, every
  tile including empty glass), the agreement test's reference. Timed around that call only: the
  model is loaded before the clock starts.
- `instanseg-otsu`: the same with `use_otsu_threshold=True`, so InstanSeg skips glass as wfsched does:
  the baseline of the GPU target.
- `in-process`: wfsched's pipeline without Ray or the service (what a segmentation worker runs):
  tissue mask, tile plan, `segment_slide` with `run_in_process`, outputs written. Its model is
  loaded and warmed on one tile before the clock starts, as a worker's is after its first batch.
- `service`: the real service in this process (local Ray, Serve over HTTP, SQLite), one workflow
  with one `cell_segmentation` job submitted over HTTP; timed from just before the POST to the
  job's `finished_at` (cold: Ray workers start and load the model inside this time), and as the
  job's own started → finished.

wfsched's runs print the seconds of each stage (decode, host↔device transfer, forward,
post-process) from the job's summary; on cuda, the mean GPU busy % (nvidia-smi) while each run
segments. Then the agreement figures of the agreement test against the `instanseg` run.

    python bench/pipeline.py [--device cpu|cuda] [--runs instanseg,in-process,service] [--repeat 1]
                             [--tile-size-px 512] [--batch-size 4] [--forward-batch-tiles 4]
                             [--num-gpus-per-task 0] [--forward-batch-sweep 1,2,4,8] [--out results.json]

A benchmark, not a test: it prints figures beside their targets and asserts nothing about them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import zarr
from PIL import Image

from bench.gpu_busy import GpuBusy
from tests.support.agreement import keep_in_mask, match_instances, resize_labels, run_reference
from wfsched.cli.fetch import SAMPLE_SLIDE_NAME, fetch_assets
from wfsched.config import Settings
from wfsched.imaging.models import model_path
from wfsched.imaging.pipeline import (
    LABELS_NAME,
    FanOut,
    SubmitBatch,
    Submitted,
    plan_segmentation,
    run_in_process,
    segment_slide,
)
from wfsched.imaging.segment import FORWARD_BATCH_TILES, SegmentSpec, infer_batch, load_model, segment_tiles_local
from wfsched.imaging.slide import inspect_slide, open_slide, read_window_at_mpp
from wfsched.imaging.tiling import Tile
from wfsched.imaging.tissue import TissueOptions, tissue_mask_of
from wfsched.jobs.cell_segmentation import CellSegmentationParams
from wfsched.jobs.tissue_mask import MASK_NAME, write_tissue_outputs

MODEL = "brightfield_nuclei"
USER = "bench-pipeline"
JOB_ID = "cells"
RUNS = ("instanseg", "instanseg-otsu", "in-process", "service")
# The model's own pixel size (0.5 µm/px); see the docstring of run_reference for why it is passed.
REFERENCE_PIXEL_SIZE_UM = 0.5
IOU_THRESHOLD = 0.5
# Issue 8's targets. On this 2-core CPU: no slower than the 1.68× over InstanSeg measured before it
# (service, submit → finished), and post-processing ≤ 10 ms per 512 px tile. On an H200-class GPU:
# the in-process job ≥ 3× faster than InstanSeg with Otsu, and the GPU busy ≥ 50 % meanwhile.
TARGET_CPU_SPEED_RATIO = 1.68
TARGET_POSTPROCESS_MS_PER_TILE = 10.0
TARGET_GPU_SPEEDUP_OVER_OTSU = 3.0
TARGET_GPU_BUSY_PERCENT = 50.0
TARGET_COUNT_DIFFERENCE = 0.03
TARGET_MATCHED_FRACTION = 0.90
# In-process, one task holds every tile, so the three stages overlap over the whole slide.
IN_PROCESS_TASK_TILES = 256

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
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where every run segments")
    parser.add_argument(
        "--runs",
        default=None,
        help=f"comma-separated, of {', '.join(RUNS)}; default instanseg,in-process,service "
        "(and instanseg-otsu on cuda)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="times each run is repeated; the fastest counts")
    parser.add_argument("--tile-size-px", type=int, default=defaults.tile_size_px, help="the job's tile_size_px")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="the service job's batch_size")
    parser.add_argument(
        "--forward-batch-tiles", type=int, default=defaults.forward_batch_tiles, help="tiles per model call"
    )
    parser.add_argument(
        "--forward-batch-sweep",
        default="",
        help="also run in-process once per tiles-per-model-call in this comma-separated list",
    )
    parser.add_argument(
        "--profile-model", action="store_true", help="profile one model call: the GPU's kernel share of it (cuda)"
    )
    parser.add_argument("--forward-streams", type=int, default=None, help="model threads per task (default by device)")
    parser.add_argument(
        "--streams-sweep", default="", help="also run in-process once per number of model threads in this list"
    )
    parser.add_argument(
        "--workers-sweep",
        default="",
        help="also run in-process once per item of this list: N worker processes sharing the device, or NxT "
        "for N workers and T tiles per task",
    )
    parser.add_argument(
        "--task-tiles", type=int, default=8, help="tiles per task when several workers share the device"
    )
    parser.add_argument(
        "--num-gpus-per-task",
        type=float,
        default=None,
        help="GPUs per segmentation task of the service (WFSCHED_NUM_GPUS_PER_TASK); default 0 on cpu, 0.5 on cuda",
    )
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    default_runs = (
        "instanseg,instanseg-otsu,in-process,service" if args.device == "cuda" else "instanseg,in-process,service"
    )
    args.runs = [r.strip() for r in (args.runs or default_runs).split(",") if r.strip() not in ("", "none")]
    unknown = set(args.runs) - set(RUNS)
    if unknown:
        parser.error(f"unknown runs {sorted(unknown)}: choose from {', '.join(RUNS)}")
    args.forward_batch_sweep = [int(n) for n in args.forward_batch_sweep.split(",") if n.strip()]
    args.streams_sweep = [int(n) for n in args.streams_sweep.split(",") if n.strip()]
    args.workers_sweep = [_workers_and_tiles(item, args.task_tiles) for item in args.workers_sweep.split(",") if item]
    if args.num_gpus_per_task is None:
        args.num_gpus_per_task = 0.5 if args.device == "cuda" else 0.0
    if args.device == "cuda" and "service" in args.runs and args.num_gpus_per_task <= 0:
        parser.error("--device cuda needs --num-gpus-per-task > 0: Ray hands a GPU only to tasks that ask")
    return args


def _workers_and_tiles(item: str, task_tiles: int) -> tuple[int, int]:
    """ "2" → two workers, `--task-tiles` tiles per task; "2x16" → two workers, 16 tiles per task."""
    workers, _, tiles = item.strip().partition("x")
    return int(workers), int(tiles) if tiles else task_tiles


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    machine = describe_machine(args.device)
    slide, model_path = cached_assets()
    workdir = Path(tempfile.mkdtemp(prefix="wfsched-bench-pipeline-"))
    print(f"slide {slide.name}, model {MODEL}, device {args.device}, {machine['cpu_count']} CPUs", flush=True)
    print(f"load average before: {machine['load_average']}", flush=True)
    figures: dict[str, Any] = {"slide": slide.name, "model": MODEL, "device": args.device, "machine": machine}
    figures["params"] = {
        "tile_size_px": args.tile_size_px,
        "batch_size": args.batch_size,
        "forward_batch_tiles": args.forward_batch_tiles,
        "num_gpus_per_task": args.num_gpus_per_task,
    }
    runs: dict[str, dict[str, Any]] = {}
    reference = None
    # InstanSeg first, before Ray exists, so nothing of ours runs while it is timed.
    for name in ("instanseg", "instanseg-otsu"):
        if name in args.runs:
            labels, runs[name] = repeated(
                args, name, lambda n=name: time_instanseg(args, slide, model_path, workdir, n)
            )
            reference = labels if name == "instanseg" else reference
    outputs: dict[str, Path] = {}
    if "in-process" in args.runs:
        warm_up(slide, model_path, args.device, args.tile_size_px, args.forward_batch_tiles)
        outputs["in-process"], runs["in-process"] = repeated(
            args, "in-process", lambda: time_in_process(args, slide, model_path, workdir, args.forward_batch_tiles)
        )
    if args.profile_model:
        print("profiling one model call ...", flush=True)
        figures["model_call_profile"] = profile_model_call(args, slide, model_path)
    for n in args.forward_batch_sweep:
        print(f"running in-process with {n} tiles per model call ...", flush=True)
        warm_up(slide, model_path, args.device, args.tile_size_px, n)
        figures.setdefault("forward_batch_sweep", {})[str(n)] = time_in_process(args, slide, model_path, workdir, n)[1]
    for n in args.streams_sweep:
        print(f"running in-process with {n} model threads ...", flush=True)
        figures.setdefault("streams_sweep", {})[str(n)] = time_in_process(
            args, slide, model_path, workdir, args.forward_batch_tiles, forward_streams=n
        )[1]
    for workers, task_tiles in args.workers_sweep:
        print(f"running in-process on {workers} worker processes, {task_tiles} tiles per task ...", flush=True)
        figures.setdefault("workers_sweep", {})[f"{workers}x{task_tiles}"] = time_in_process(
            args, slide, model_path, workdir, args.forward_batch_tiles, workers=workers, task_tiles=task_tiles
        )[1]
    if "service" in args.runs:
        outputs["service"], runs["service"] = repeated(args, "service", lambda: time_service(args, slide, workdir))
    figures["runs"] = runs
    if reference is not None:
        figures["agreement"] = {name: agreement(reference, folder) for name, folder in outputs.items()}
    figures["restriction"] = RESTRICTION
    figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    figures["targets"] = targets(args, runs)
    report(figures)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {args.out}")


def cached_assets() -> tuple[Path, Path]:
    """The slide and model in the cache the service's job uses (WFSCHED_CACHE_DIR, else the user
    cache); fetched only when missing, so a filled cache needs no network."""
    cache_dir = Settings.from_env().cache_dir
    slide, model = cache_dir / "slides" / SAMPLE_SLIDE_NAME, model_path(cache_dir, MODEL)
    if not (slide.is_file() and model.is_file()):
        assets = fetch_assets(cache_dir)
        slide, model = assets.sample_slide, assets.models[MODEL]
    return slide, model


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


def repeated(args: argparse.Namespace, name: str, run: Any) -> tuple[Any, dict[str, Any]]:
    """Run `args.repeat` times; the fastest run's output and figures, with every run's seconds."""
    best: tuple[Any, dict[str, Any]] | None = None
    seconds: list[float] = []
    for attempt in range(1, args.repeat + 1):
        print(f"running {name} ({attempt}/{args.repeat}) ...", flush=True)
        output, timing = run()
        seconds.append(timing["seconds"])
        print(f"  {timing['seconds']:.2f} s", flush=True)
        if best is None or timing["seconds"] < best[1]["seconds"]:
            best = (output, timing)
    assert best is not None
    best[1]["all_seconds"] = [round(s, 3) for s in seconds]
    return best


def time_instanseg(
    args: argparse.Namespace, slide: Path, model_path: Path, workdir: Path, name: str
) -> tuple[np.ndarray, dict[str, Any]]:
    folder = workdir / f"{name}-{time.monotonic_ns()}"
    with GpuBusy(enabled=args.device == "cuda") as busy:
        labels, seconds = run_reference(
            slide,
            model_path,
            folder,
            pixel_size_um=REFERENCE_PIXEL_SIZE_UM,
            device=args.device,
            use_otsu_threshold=name == "instanseg-otsu",
        )
    count = int(np.unique(labels[labels > 0]).size)
    return labels, {"seconds": round(seconds, 3), "objects": count, "gpu_busy_percent": busy.mean_percent}


def warm_up(slide: Path, model_path: Path, device: str, tile_px: int, forward_batch_tiles: int | None) -> None:
    """Load the model and run it on one batch, as a worker has after its first batches.

    Twice: TorchScript profiles the first call with a new input shape and optimises on the next.
    """
    predictor = load_model(str(model_path), device)
    info = inspect_slide(slide)
    window = read_window_at_mpp(open_slide(slide), info, (0, 0, tile_px, tile_px), info.mpp)
    for _ in range(2):
        infer_batch(predictor, [window] * (forward_batch_tiles or FORWARD_BATCH_TILES[device]), "nuclei")


def profile_model_call(args: argparse.Namespace, slide: Path, model_path: Path) -> dict[str, Any]:
    """One model call on tissue tiles under torch.profiler: how much of it the GPU spends in kernels.

    The union of the CUDA kernels' intervals over the call's wall time is the GPU's busy share
    without sampling; the host operators with the most time of their own say where the rest goes.
    """
    from torch.profiler import ProfilerActivity, profile

    per_call = args.forward_batch_tiles or FORWARD_BATCH_TILES[args.device]
    info = inspect_slide(slide)
    tissue = tissue_mask_of(open_slide(slide), info, TissueOptions())
    plan = plan_segmentation(info, model_path, tissue, tile_px=args.tile_size_px, halo_px=64, target="nuclei")
    reader = open_slide(slide)
    middle = len(plan.tiles) // 2
    windows = [
        read_window_at_mpp(reader, info, t.window, plan.spec.grid.working_mpp)
        for t in plan.tiles[middle : middle + per_call]
    ]
    predictor = load_model(str(model_path), args.device)
    for _ in range(3):
        infer_batch(predictor, windows, "nuclei")
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as profiler:
        started = time.perf_counter()
        infer_batch(predictor, windows, "nuclei")
        wall_s = time.perf_counter() - started
    kernels = sorted(
        (event.time_range.start, event.time_range.end)
        for event in profiler.events()
        if event.device_type.name == "CUDA" and event.time_range.end > event.time_range.start
    )
    busy_us, reach = 0.0, float("-inf")
    for start, end in kernels:
        busy_us += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    host = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:8]
    return {
        "tiles": len(windows),
        "wall_ms": round(wall_s * 1000, 1),
        "kernel_ms": round(busy_us / 1000, 1),
        "kernel_share": round(busy_us / 1e6 / wall_s, 3),
        "kernels": len(kernels),
        "host_ops_by_own_time_ms": {e.key: round(e.self_cpu_time_total / 1000, 1) for e in host},
    }


def process_pool_submitter(pool: ProcessPoolExecutor) -> SubmitBatch:
    """A SubmitBatch on worker processes: Ray's fan-out without Ray (one model per process)."""

    def submit(spec: SegmentSpec, tiles: list[Tile]) -> Submitted:
        future = pool.submit(segment_tiles_local, spec, tiles)
        return Submitted(future=future, cancel=future.cancel)

    return submit


def _worker_ready() -> None:
    time.sleep(0.5)  # long enough that every worker process is started, each taking one


def time_in_process(
    args: argparse.Namespace,
    slide: Path,
    model_path: Path,
    workdir: Path,
    forward_batch_tiles: int | None,
    workers: int = 1,
    task_tiles: int = IN_PROCESS_TASK_TILES,
    forward_streams: int | None = None,
) -> tuple[Path, dict[str, Any]]:
    """The job's work without Ray: tissue mask, plan, segmentation, outputs; the models already warm.

    One worker: the calling process, one task of every tile. More: that many worker processes
    sharing the GPU (as Ray tasks with a fraction of a GPU each), tasks of `task_tiles` tiles.
    """
    output_dir = workdir / f"in-process-{time.monotonic_ns()}"
    output_dir.mkdir(parents=True)
    pool = None
    if workers > 1:
        pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=warm_up,
            initargs=(slide, model_path, args.device, args.tile_size_px, forward_batch_tiles),
        )
        for future in [pool.submit(_worker_ready) for _ in range(workers)]:
            future.result()
    submit = run_in_process if pool is None else process_pool_submitter(pool)
    with GpuBusy(enabled=args.device == "cuda") as busy:
        started = time.perf_counter()
        info = inspect_slide(slide)
        tissue = tissue_mask_of(open_slide(slide), info, TissueOptions())
        write_tissue_outputs(tissue, info, output_dir)
        tissue_s = time.perf_counter() - started
        plan = plan_segmentation(
            info,
            model_path,
            tissue,
            tile_px=args.tile_size_px,
            halo_px=CellSegmentationParams.model_validate({}).halo_px,
            target="nuclei",
            forward_batch_tiles=forward_batch_tiles,
            forward_streams=forward_streams or args.forward_streams,
        )
        segmenting = time.monotonic()
        summary = segment_slide(plan, submit, output_dir, FanOut(batch_size=task_tiles, max_in_flight=2 * workers))
        seconds = time.perf_counter() - started
    if pool is not None:
        pool.shutdown()
    return output_dir, {
        "seconds": round(seconds, 3),
        "tissue_s": round(tissue_s, 3),
        "objects": summary["cell_count"],
        "workers": workers,
        "task_tiles": min(task_tiles, summary["tiles_segmented"]),
        "gpu_busy_percent": busy.mean_percent,
        "gpu_busy_percent_segmenting": busy.mean_between(segmenting, segmenting + summary["segment_s"]),
        **_stages(summary),
    }


def _stages(summary: dict[str, Any]) -> dict[str, Any]:
    stages = summary["stage_s"]
    tiles = max(1, summary["tiles_segmented"])
    return {
        "tiles": summary["tiles_segmented"],
        "forward_batch_tiles": summary["forward_batch_tiles"],
        "forward_streams": summary["forward_streams"],
        "devices": summary["devices"],
        "segment_s": summary["segment_s"],
        "stitch_s": summary["stitch_s"],
        "stage_s": stages,
        "ms_per_tile": {stage: round(seconds / tiles * 1000, 2) for stage, seconds in stages.items()},
        # The share of the segmentation's wall time the model was running: a sampling-free busy figure.
        "forward_share_of_segment": round(stages["forward"] / summary["segment_s"], 3)
        if summary["segment_s"]
        else None,
    }


def time_service(args: argparse.Namespace, slide: Path, workdir: Path) -> tuple[Path, dict[str, Any]]:
    """Start the service, submit one cell_segmentation job over HTTP, wait; its folder and figures."""
    from tests.support.service import ROOT, free_port, wait_healthy
    from wfsched.api import server
    from wfsched.cli.client import Client
    from wfsched.store.paths import job_output_dir

    base = workdir / f"service-{time.monotonic_ns()}"
    settings = Settings.from_env(
        port=free_port(),
        db=base / "wfsched.db",
        data_roots=(slide.parent,),
        results_dir=base / "results",
        num_gpus_per_task=args.num_gpus_per_task,
    )
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
    server.start(settings, options)
    url = f"http://{settings.host}:{settings.port}"
    client = Client(url, USER)
    try:
        wait_healthy(url)
        params = {
            "model": MODEL,
            "tile_size_px": args.tile_size_px,
            "batch_size": args.batch_size,
            **({"forward_batch_tiles": args.forward_batch_tiles} if args.forward_batch_tiles else {}),
        }
        workflow = {
            "name": "bench pipeline",
            "jobs": [{"job_id": JOB_ID, "job_type": "cell_segmentation", "image_path": str(slide), "params": params}],
        }
        with GpuBusy(enabled=args.device == "cuda") as busy:
            submitted_at = time.time()
            workflow_id = client.submit(workflow).workflow_id
            # Slow polling: the benchmark's own requests must not eat the CPU it measures.
            finished = client.wait(workflow_id, poll_s=1.0, timeout_s=3600)
        job = next(j for j in finished.jobs if j.job_id == JOB_ID)
        if job.status != "succeeded" or job.result is None or job.started_at is None or job.finished_at is None:
            raise SystemExit(f"the cell_segmentation job {job.status}: {job.error}")
        summary = job.result.fields
        figures = {
            "seconds": round(job.finished_at - submitted_at, 3),
            "job_s": round(job.finished_at - job.started_at, 3),
            "objects": summary["cell_count"],
            "gpu_busy_percent": busy.mean_percent,
            **_stages(summary),
        }
        return job_output_dir(settings.results_dir, USER, workflow_id, JOB_ID), figures
    finally:
        client.close()
        server.stop()


def agreement(reference: np.ndarray, output_dir: Path) -> dict[str, Any]:
    """The agreement test's figures for one of our runs against InstanSeg's default run."""
    ours = np.asarray(zarr.open_array(str(output_dir / LABELS_NAME), mode="r")[:])
    tissue = np.asarray(Image.open(output_dir / MASK_NAME)) > 0
    reference = resize_labels(reference, ours.shape)
    whole = match_instances(reference, ours, iou_threshold=IOU_THRESHOLD)
    on_tissue = match_instances(
        keep_in_mask(reference, tissue), keep_in_mask(ours, tissue), iou_threshold=IOU_THRESHOLD
    )
    return {
        "whole_slide_counts": {"instanseg": whole.reference_count, "wfsched": whole.our_count},
        "on_tissue_counts": {"instanseg": on_tissue.reference_count, "wfsched": on_tissue.our_count},
        "count_difference": round(on_tissue.count_difference, 5),
        "matched_fraction": round(on_tissue.matched_fraction, 5),
    }


def targets(args: argparse.Namespace, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each target beside the figure it applies to (None where that run was not made)."""

    def seconds(name: str, key: str = "seconds") -> float | None:
        return runs[name][key] if name in runs else None

    # Inside the pipeline post-processing shares the CPU with the model (on a 2-core CPU, with the
    # model's own threads): bench/postprocess.py measures the target alone.
    post_ms = [runs[n]["ms_per_tile"]["postprocess"] for n in ("in-process", "service") if n in runs]
    found: dict[str, Any] = {
        "postprocess_ms_per_tile_beside_the_model": {
            "target_at_most": TARGET_POSTPROCESS_MS_PER_TILE,
            "measured": min(post_ms, default=None),
        }
    }
    if args.device == "cpu":
        instanseg, service = seconds("instanseg"), seconds("service")
        found["cpu_speed_ratio"] = {
            "target_at_least": TARGET_CPU_SPEED_RATIO,
            "measured": round(instanseg / service, 3) if instanseg and service else None,
        }
    else:
        otsu, ours = seconds("instanseg-otsu"), seconds("in-process")
        found["gpu_speedup_over_instanseg_otsu"] = {
            "target_at_least": TARGET_GPU_SPEEDUP_OVER_OTSU,
            "measured": round(otsu / ours, 3) if otsu and ours else None,
        }
        found["gpu_busy_percent_while_segmenting"] = {
            "target_at_least": TARGET_GPU_BUSY_PERCENT,
            "measured": runs.get("in-process", {}).get("gpu_busy_percent_segmenting"),
        }
    return found


def report(f: dict[str, Any]) -> None:
    runs = f["runs"]
    print()
    print(f"comparison: {f['restriction']}")
    print()
    print(f"{'run':<16}{'seconds':>9}{'objects':>9}{'GPU busy':>10}   stages: s (ms per tile)")
    print(f"{'':<34}(GPU busy: over the run / while segmenting)")
    for name, run in runs.items():
        busy = "" if run.get("gpu_busy_percent") is None else f"{run['gpu_busy_percent']:.0f} %"
        if run.get("gpu_busy_percent_segmenting") is not None:
            busy = f"{run['gpu_busy_percent']:.0f}/{run['gpu_busy_percent_segmenting']:.0f} %"
        stages = ""
        if "stage_s" in run:
            stages = ", ".join(
                f"{stage} {run['stage_s'][stage]:.3f} ({run['ms_per_tile'][stage]:.1f})"
                for stage in ("decode", "transfer", "forward", "postprocess", "wall")
            )
            stages += (
                f"; {run['tiles']} tiles, {run['forward_batch_tiles']} per model call, "
                f"{run['forward_streams']} model thread(s), stitch {run['stitch_s']} s"
            )
        extra = f"  (job started → finished {run['job_s']:.2f} s)" if "job_s" in run else ""
        print(f"{name:<16}{run['seconds']:>9.2f}{run['objects']:>9}{busy:>10}   {stages}{extra}")
        if len(run.get("all_seconds", [])) > 1:
            print(f"{'':<16}all runs: {run['all_seconds']}")
    if "model_call_profile" in f:
        p = f["model_call_profile"]
        print(
            f"one model call on {p['tiles']} tissue tiles: {p['wall_ms']} ms, CUDA kernels {p['kernel_ms']} ms "
            f"({p['kernel_share']:.0%} of it, {p['kernels']} kernels); host operators by own time (ms): "
            f"{p['host_ops_by_own_time_ms']}"
        )
    sweeps = [("tiles per model call", run) for run in f.get("forward_batch_sweep", {}).values()]
    sweeps += [("model threads", run) for run in f.get("streams_sweep", {}).values()]
    sweeps += [("worker processes", run) for run in f.get("workers_sweep", {}).values()]
    for label, run in sweeps:
        print(
            f"in-process, {run['forward_batch_tiles']} tiles per model call, {run['forward_streams']} model "
            f"thread(s), {run['workers']} worker(s), "
            f"{run['task_tiles']} tiles per task: {run['seconds']:.2f} s (segment {run['segment_s']:.2f} s, "
            f"forward {run['stage_s']['forward']:.3f} s); GPU busy {run['gpu_busy_percent']} % over the job, "
            f"{run['gpu_busy_percent_segmenting']} % while segmenting  [{label}]"
        )
    print()
    for name, agreement in f.get("agreement", {}).items():
        print(
            f"{name}: on tissue InstanSeg {agreement['on_tissue_counts']['instanseg']}, wfsched "
            f"{agreement['on_tissue_counts']['wfsched']}; count difference {agreement['count_difference']:.2%} "
            f"(target ≤ {TARGET_COUNT_DIFFERENCE:.0%}); matched at IoU ≥ {IOU_THRESHOLD} "
            f"{agreement['matched_fraction']:.2%} (target ≥ {TARGET_MATCHED_FRACTION:.0%})"
        )
    for name, target in f["targets"].items():
        bound = "≥" if "target_at_least" in target else "≤"
        value = target.get("target_at_least", target.get("target_at_most"))
        print(f"target {name}: measured {target['measured']}, target {bound} {value}")
    print(
        f"load average (1, 5, 15 min) before / after: {f['machine']['load_average']} / {f['load_average_after']}  "
        f"({f['machine']['cpu_count']} CPUs)"
    )


if __name__ == "__main__":
    main()
