"""Job state, timings, progress and result summaries."""

from __future__ import annotations

from fastapi import APIRouter

from wfsched.api.routes.deps import ServiceDep
from wfsched.api.tenancy import UserId
from wfsched.models.state import JobRecord

router = APIRouter(prefix="/workflows/{workflow_id}/jobs", tags=["jobs"])


@router.get("", response_model=list[JobRecord])
async def list_jobs(workflow_id: str, user: UserId, service: ServiceDep) -> list[JobRecord]:
    """Every job of the workflow in submitted order; times are seconds since the epoch."""
    return await service.jobs(user, workflow_id)


@router.get("/{job_id}", response_model=JobRecord)
async def get_job(workflow_id: str, job_id: str, user: UserId, service: ServiceDep) -> JobRecord:
    return await service.job(user, workflow_id, job_id)
