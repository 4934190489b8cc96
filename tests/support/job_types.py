"""Job types for tests and benchmarks only: registered through `settings.job_modules`, never served.

- `sleep`: waits `duration_s` in `steps` steps, reporting progress; fails on demand.
- `wait_signal`: runs until the file `signal_path` exists (a test creates it) or it is cancelled.
- `sleep_batches`: a segmentation's fan-out (the real `run_batches`, its slots from the tile-batch
  dispatcher) whose `batches` Ray tasks each hold a slot for `batch_s`; its result holds when each
  batch ran (bench/fairness.py).

The first two append a line to `record_path`, when given, each time they start: a test counts the runs.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tests.support.batches import empty_batch, row_of_tiles
from wfsched.exceptions import JobError
from wfsched.imaging.checkpoint import TileCheckpoints
from wfsched.imaging.pipeline import FanOut, Submitted, run_batches
from wfsched.imaging.segment import SegmentedBatch, SegmentSpec
from wfsched.imaging.tiling import Tile
from wfsched.jobs.registry import JobContext, JobType

POLL_S = 0.05  # a waiting job checks its signal file this often


class SleepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    duration_s: float = Field(default=0.0, ge=0, le=600)
    steps: int = Field(default=1, ge=0, le=10_000, description="progress reports; 0 reports none")
    fail: bool = False
    record_path: str | None = None


class WaitSignalParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signal_path: str
    timeout_s: float = Field(default=300.0, gt=0)
    record_path: str | None = None


def record_start(ctx: JobContext, record_path: str | None) -> None:
    if record_path:
        with open(record_path, "a") as record:
            record.write(f"{ctx.workflow_id} {ctx.job_id}\n")


def run_sleep(ctx: JobContext) -> dict[str, Any]:
    params = ctx.params
    assert isinstance(params, SleepParams)
    record_start(ctx, params.record_path)
    # Waiting on the cancel event, not polling: hundreds of sleeping jobs must cost no CPU.
    if params.steps == 0:
        ctx.cancel_event.wait(params.duration_s)
        ctx.check_cancelled()
    for step in range(params.steps):
        ctx.cancel_event.wait(params.duration_s / params.steps)
        ctx.check_cancelled()
        ctx.report_progress(step + 1, params.steps)
    if params.fail:
        raise JobError(f"job {ctx.job_id!r} failed on purpose")
    return {"slept_s": params.duration_s}


def run_wait_signal(ctx: JobContext) -> dict[str, Any]:
    params = ctx.params
    assert isinstance(params, WaitSignalParams)
    record_start(ctx, params.record_path)
    deadline = time.monotonic() + params.timeout_s
    signal = Path(params.signal_path)
    while not signal.exists():
        ctx.check_cancelled()
        if time.monotonic() > deadline:
            raise JobError(f"no signal at {signal} within {params.timeout_s} s")
        time.sleep(POLL_S)
    return {"signal": signal.read_text()}


class SleepBatchesParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batches: int = Field(ge=1, le=10_000)
    batch_s: float = Field(ge=0, le=60)
    # Batches asked for or running at once: by default all a job can use, as a big job's would be.
    max_batches_in_flight: int = Field(default=1024, ge=1, le=1024)


def run_sleep_batches(ctx: JobContext) -> dict[str, Any]:
    """One tile per batch through `run_batches`, each batch a `sleep_batch` task granted a slot."""
    import ray

    from tests.support.sleep_task import sleep_batch
    from wfsched.control.dispatcher import task_slots

    params = ctx.params
    assert isinstance(params, SleepBatchesParams)
    slots = task_slots(ctx.settings, ctx.user_id, f"{ctx.workflow_id}/{ctx.job_id}")
    task = sleep_batch.options(num_gpus=slots.gpus_per_task())
    ran: list[tuple[float, float]] = []
    lock = threading.Lock()

    def submit(spec: SegmentSpec, tiles: list[Tile]) -> Submitted:
        ref = task.remote(params.batch_s)
        batch: Future[SegmentedBatch] = Future()

        def ended(times: Future[tuple[float, float]]) -> None:
            try:
                started_s, ended_s = times.result()
            except BaseException as error:
                batch.set_exception(error)
                return
            with lock:
                ran.append((started_s, ended_s))
            batch.set_result(empty_batch(tiles, ended_s - started_s))

        ref.future().add_done_callback(ended)
        return Submitted(batch, lambda: ray.cancel(ref), lambda: ray.cancel(ref, force=True))

    spec, tiles = row_of_tiles(params.batches)
    fan_out = FanOut(
        batch_size=1,
        max_in_flight=params.max_batches_in_flight,
        on_progress=ctx.report_progress,
        check_cancelled=ctx.check_cancelled,
        cancel_grace_s=ctx.settings.cancel_grace_s,
        slots=slots,
    )
    run_batches(spec, tiles, submit, TileCheckpoints(ctx.output_dir / "tiles", spec.grid.fingerprint()), fan_out)
    return {"batch_times": sorted(ran)}


JOB_TYPES = [
    JobType("sleep", SleepParams, run_sleep, "Waits, reports progress, fails on demand."),
    JobType("wait_signal", WaitSignalParams, run_wait_signal, "Runs until a file appears."),
    JobType("sleep_batches", SleepBatchesParams, run_sleep_batches, "A fan-out of batches that sleep."),
]
