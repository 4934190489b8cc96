"""Job types for tests and benchmarks only: registered through `settings.job_modules`, never served.

- `sleep`: waits `duration_s` in `steps` steps, reporting progress; fails on demand.
- `wait_signal`: runs until the file `signal_path` exists (a test creates it) or it is cancelled.

Both append a line to `record_path`, when given, each time they start: a test counts the runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from wfsched.exceptions import JobError
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


JOB_TYPES = [
    JobType("sleep", SleepParams, run_sleep, "Waits, reports progress, fails on demand."),
    JobType("wait_signal", WaitSignalParams, run_wait_signal, "Runs until a file appears."),
]
