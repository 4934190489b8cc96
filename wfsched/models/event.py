"""Events: every state change and tile progress, numbered per workflow."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel


class EventType(StrEnum):
    workflow_queued = "workflow.queued"
    """Accepted and waiting; `queue_position` in data, re-sent whenever it changes."""
    workflow_admitted = "workflow.admitted"
    """Took (or shares) an active-user slot; its jobs may start."""
    workflow_finished = "workflow.finished"
    """Final: `status` and a `summary` of job counts in data."""
    job_state = "job.state"
    """A job changed state: `job_id`, `status`, and `error` when it failed."""
    job_progress = "job.progress"
    """Tile progress of a running job: `job_id`, `done`, `total`."""


class Event(BaseModel):
    workflow_id: str
    seq: int
    type: EventType
    ts: float
    data: dict[str, Any]
