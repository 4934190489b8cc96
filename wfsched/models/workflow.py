"""What a user submits: a workflow of jobs (the body of `POST /api/workflows`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from wfsched.models.state import JobRecord, WorkflowStatus
from wfsched.store.paths import ID_PATTERN, ID_RULE


class JobSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(pattern=ID_PATTERN, description="Unique within the workflow; " + ID_RULE + ".")
    job_type: str = Field(min_length=1, description="A registered job type, e.g. `tissue_mask`.")
    image_path: str = Field(description="A slide inside one of the configured data roots.")
    branch: str = Field(
        default="main", pattern=ID_PATTERN, description="Jobs of a branch run in list order; " + ID_RULE + "."
    )
    depends_on: list[str] = Field(default_factory=list, description="Job ids (any branch) that must succeed first.")
    params: dict[str, Any] = Field(default_factory=dict, description="Validated by the job type.")


class WorkflowSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    jobs: list[JobSubmission]

    def job_records(
        self, workflow_id: str, params: dict[str, dict[str, Any]], image_paths: dict[str, Path]
    ) -> list[JobRecord]:
        """The jobs as the scheduler keeps them: validated params, each image path resolved."""
        return [
            JobRecord(
                workflow_id=workflow_id,
                job_id=job.job_id,
                index=index,
                branch=job.branch,
                job_type=job.job_type,
                image_path=str(image_paths[job.image_path]),
                depends_on=job.depends_on,
                params=params[job.job_id],
            )
            for index, job in enumerate(self.jobs)
        ]


class SubmitResponse(BaseModel):
    workflow_id: str
    status: WorkflowStatus
    queue_position: int | None = None
