"""The job-type registry.

A job type is a name, a pydantic model of its `params` and a runner. Modules that provide job
types expose a list `JOB_TYPES`; the registry is built from the built-in modules plus the
`job_modules` named in settings (tests and plugins), in every process that needs it.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from wfsched.config import Settings
from wfsched.exceptions import JobCancelledError
from wfsched.observe import logs

BUILTIN_JOB_MODULES: tuple[str, ...] = ("wfsched.jobs.tissue_mask", "wfsched.jobs.cell_segmentation")

# Tile progress is coalesced to at most this many reports per second per job.
PROGRESS_REPORTS_PER_S = 4.0


@dataclass(frozen=True)
class UpstreamJob:
    """A finished job this one depends on, as its runner sees it."""

    job_id: str
    job_type: str
    image_path: str
    result: Mapping[str, Any]
    output_dir: Path


@dataclass
class JobContext:
    """Everything a runner gets: its inputs, where to write, and how to report and stop."""

    workflow_id: str
    job_id: str
    user_id: str
    image_path: Path
    params: BaseModel
    settings: Settings
    output_dir: Path
    upstream: Mapping[str, UpstreamJob] = field(default_factory=dict)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    on_progress: Callable[[int, int], None] = lambda done, total: None
    # The X-Request-ID of the workflow's submission (observe/logs.py).
    request_id: str | None = None
    _last_report_s: float = 0.0

    @property
    def log_fields(self) -> dict[str, str]:
        """Who and what this job is, for log lines: a runner passes them on to its Ray tasks."""
        return logs.fields(
            request_id=self.request_id, tenant=self.user_id, workflow_id=self.workflow_id, job_id=self.job_id
        )

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        """Raise JobCancelledError if the job was told to stop; call it between units of work."""
        if self.cancel_event.is_set():
            raise JobCancelledError(f"job {self.job_id!r} was cancelled")

    def report_progress(self, done: int, total: int) -> None:
        """Report tile progress; coalesced, but the first and the final report always go out."""
        now = time.monotonic()
        final = done >= total
        if final or now - self._last_report_s >= 1.0 / PROGRESS_REPORTS_PER_S:
            self._last_report_s = now
            self.on_progress(done, total)


JobRunner = Callable[[JobContext], dict[str, Any]]
"""Runs one job; returns a JSON-able summary. Raise JobError (or any exception) to fail it."""


@dataclass(frozen=True)
class JobType:
    name: str
    params_model: type[BaseModel]
    run: JobRunner
    description: str = ""


def load_job_types(settings: Settings) -> dict[str, JobType]:
    """Every registered job type by name: the built-in ones and those of `settings.job_modules`."""
    registry: dict[str, JobType] = {}
    for module_name in (*BUILTIN_JOB_MODULES, *settings.job_modules):
        module = importlib.import_module(module_name)
        for job_type in getattr(module, "JOB_TYPES", []):
            if job_type.name in registry:
                raise ValueError(f"job type {job_type.name!r} of {module_name} is already registered")
            registry[job_type.name] = job_type
    return registry
