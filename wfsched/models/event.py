"""Events: every state change and tile progress, numbered per workflow."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


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
    """Progress of a running job: `job_id`, `done`, `total`, `rate_per_s` and `eta_s` (null until known)."""


class Event(BaseModel):
    """One event; the same JSON on SSE, WebSocket and in the CLI."""

    workflow_id: str
    seq: int = Field(description="Position in its workflow's stream, from 1; the SSE id of that stream.")
    id: int | None = Field(default=None, description="Position among all events; the SSE id of /api/events.")
    type: EventType
    ts: float = Field(description="When it happened, seconds since the epoch.")
    data: dict[str, Any]
