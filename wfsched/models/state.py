"""Workflow and job state as the store keeps it and the API returns it."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class WorkflowStatus(StrEnum):
    queued = "queued"
    """Accepted; waits for one of the active-user slots."""
    running = "running"
    """Admitted: its jobs run as their branches and dependencies allow."""
    succeeded = "succeeded"
    """Every job succeeded."""
    failed = "failed"
    """Some job failed (its dependents were skipped)."""
    cancelled = "cancelled"
    """Cancelled by its owner."""

    @property
    def finished(self) -> bool:
        return self in FINISHED_WORKFLOW


class JobStatus(StrEnum):
    pending = "pending"
    """Not started: waits for its branch turn and its dependencies."""
    running = "running"
    """Its runner is at work."""
    succeeded = "succeeded"
    """Ran to the end; `result` holds its summary."""
    failed = "failed"
    """Its runner raised; `error` says why."""
    skipped = "skipped"
    """Never ran because something it depends on did not succeed."""
    cancelled = "cancelled"
    """Never ran, or stopped, because the workflow was cancelled."""

    @property
    def finished(self) -> bool:
        return self in FINISHED_JOB


FINISHED_WORKFLOW = frozenset({WorkflowStatus.succeeded, WorkflowStatus.failed, WorkflowStatus.cancelled})
FINISHED_JOB = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.skipped, JobStatus.cancelled})


def job_percent(status: JobStatus, done: int, total: int) -> float:
    """100 once finished (whatever the outcome), done/total while running, else 0.

    The one rule for a job's percent: the API's progress, the CLI's bars and the web page's
    (wfsched/web/progress.js, checked against this by the browser test) all show it.
    """
    if status.finished:
        return 100.0
    if status == JobStatus.running and total:
        return 100.0 * done / total
    return 0.0


class JobResult(BaseModel):
    """A succeeded job's summary: the artifacts it wrote, and whatever else its job type reports."""

    model_config = ConfigDict(extra="allow")

    artifacts: list[str] = Field(
        default_factory=list,
        description="Files and folders in the job's results folder that the artifacts route serves.",
    )

    @property
    def fields(self) -> dict[str, Any]:
        """Every field, the declared and the job type's own, as a plain dict."""
        return self.model_dump()


class JobRecord(BaseModel):
    workflow_id: str
    job_id: str
    index: int = Field(description="Position in the submitted list.")
    branch: str
    job_type: str
    image_path: str
    depends_on: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    status: JobStatus = JobStatus.pending
    started_at: float | None = None
    finished_at: float | None = None
    progress_done: int = 0
    progress_total: int = 0
    result: JobResult | None = None
    error: str | None = None
    attempt: int = 0

    def lists_artifact(self, name: str) -> bool:
        """Whether the job's result names `name` among its artifacts (only those are served)."""
        return self.result is not None and name in self.result.artifacts

    @property
    def percent(self) -> float:
        return job_percent(self.status, self.progress_done, self.progress_total)


class WorkflowRecord(BaseModel):
    workflow_id: str
    user_id: str
    name: str
    status: WorkflowStatus = WorkflowStatus.queued
    created_at: float
    admitted_at: float | None = None
    finished_at: float | None = None
    queue_position: int | None = None
    request_id: str | None = Field(
        None, description="The X-Request-ID of the submission: its log lines carry it (README, Following a request)."
    )


class IdempotentSubmission(BaseModel):
    """The first answer to a submission with an `Idempotency-Key`, given again to a repeat of it."""

    user_id: str
    key: str
    body_sha256: str
    workflow_id: str
    status: WorkflowStatus
    queue_position: int | None = None
    created_at: float


class WorkflowDetail(WorkflowRecord):
    branches: dict[str, list[str]] = Field(description="Branch name to its job ids, in run order.")
    jobs: list[JobRecord]


class WorkflowPage(BaseModel):
    workflows: list[WorkflowRecord]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last.")


class JobProgress(BaseModel):
    job_id: str
    status: JobStatus
    done: int
    total: int
    percent: float

    @classmethod
    def of(cls, job: JobRecord) -> JobProgress:
        return cls(
            job_id=job.job_id,
            status=job.status,
            done=job.progress_done,
            total=job.progress_total,
            percent=round(job.percent, 2),
        )


class ProgressSnapshot(BaseModel):
    workflow_id: str
    status: WorkflowStatus
    queue_position: int | None
    percent: float
    jobs: list[JobProgress]

    @classmethod
    def of(cls, record: WorkflowRecord, jobs: list[JobRecord]) -> ProgressSnapshot:
        """Per job done/total and percent; the workflow's percent is the mean over its jobs."""
        progress = [JobProgress.of(job) for job in jobs]
        percent = sum(p.percent for p in progress) / len(progress) if progress else 0.0
        return cls(
            workflow_id=record.workflow_id,
            status=record.status,
            queue_position=record.queue_position,
            percent=round(percent, 2),
            jobs=progress,
        )
