"""Submit, list, get and cancel workflows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query

from wfsched.api.routes.deps import ServiceDep
from wfsched.api.tenancy import UserId
from wfsched.models.state import WorkflowDetail, WorkflowPage, WorkflowRecord, WorkflowStatus
from wfsched.models.workflow import SubmitResponse, WorkflowSubmission

router = APIRouter(prefix="/workflows", tags=["workflows"])

IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Any unique string (1–255 printable ASCII characters, e.g. a UUID). The same key and body "
        "within 24 h get the first answer again instead of a second workflow; the same key with another body is 422.",
    ),
]


@router.post("", status_code=201, response_model=SubmitResponse)
async def submit_workflow(
    workflow: WorkflowSubmission, user: UserId, service: ServiceDep, idempotency_key: IdempotencyKeyHeader = None
) -> SubmitResponse:
    """Accept a workflow; it runs at once if its user is active or a slot is free, else it queues."""
    record = await service.submit(user, workflow, idempotency_key)
    return SubmitResponse(workflow_id=record.workflow_id, status=record.status, queue_position=record.queue_position)


@router.get("", response_model=WorkflowPage)
async def list_workflows(
    user: UserId,
    service: ServiceDep,
    status: WorkflowStatus | None = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> WorkflowPage:
    """The caller's workflows, newest first."""
    return await service.list_workflows(user, status, cursor, limit)


@router.get("/{workflow_id}", response_model=WorkflowDetail)
async def get_workflow(workflow_id: str, user: UserId, service: ServiceDep) -> WorkflowDetail:
    return await service.workflow(user, workflow_id)


@router.post("/{workflow_id}/cancel", response_model=WorkflowRecord)
async def cancel_workflow(workflow_id: str, user: UserId, service: ServiceDep) -> WorkflowRecord:
    """Pending jobs never start; running ones are told to stop and end `cancelled`."""
    return await service.cancel(user, workflow_id)
