"""Progress snapshots (the streams come with their own routes)."""

from __future__ import annotations

from fastapi import APIRouter

from wfsched.api.routes.deps import ServiceDep
from wfsched.api.tenancy import UserId
from wfsched.models.state import ProgressSnapshot

router = APIRouter(prefix="/progress", tags=["progress"])


@router.get("/{workflow_id}", response_model=ProgressSnapshot)
async def progress_snapshot(workflow_id: str, user: UserId, service: ServiceDep) -> ProgressSnapshot:
    """Per job done/total and percent, and the workflow's percent."""
    return await service.progress(user, workflow_id)
