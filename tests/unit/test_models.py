"""What the models compute for the API: job records from a submission, progress, artifact policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wfsched.models.state import JobRecord, JobStatus, ProgressSnapshot, WorkflowRecord, WorkflowStatus
from wfsched.models.workflow import WorkflowSubmission


def _job(
    job_id: str, status: JobStatus, done: int = 0, total: int = 0, result: dict[str, Any] | None = None
) -> JobRecord:
    return JobRecord(
        workflow_id="w",
        job_id=job_id,
        index=0,
        branch="main",
        job_type="t",
        image_path="/x.svs",
        status=status,
        progress_done=done,
        progress_total=total,
        result=result,
    )


def test_a_submission_becomes_job_records_with_resolved_images_and_validated_params() -> None:
    submission = WorkflowSubmission.model_validate(
        {
            "name": "n",
            "jobs": [
                {"job_id": "a", "job_type": "t", "image_path": "s.svs"},
                {"job_id": "b", "job_type": "t", "image_path": "s.svs", "branch": "x", "depends_on": ["a"]},
            ],
        }
    )
    records = submission.job_records("w", {"a": {"k": 1}, "b": {}}, {"s.svs": Path("/data/s.svs")})
    assert [(r.job_id, r.index, r.branch, r.depends_on, r.params) for r in records] == [
        ("a", 0, "main", [], {"k": 1}),
        ("b", 1, "x", ["a"], {}),
    ]
    assert {r.image_path for r in records} == {"/data/s.svs"} and {r.workflow_id for r in records} == {"w"}


def test_progress_counts_finished_jobs_whole_and_running_ones_by_their_units() -> None:
    jobs = [
        _job("done", JobStatus.succeeded, 3, 10),
        _job("failed", JobStatus.failed),
        _job("half", JobStatus.running, 5, 10),
        _job("starting", JobStatus.running, 0, 0),
        _job("waiting", JobStatus.pending),
    ]
    record = WorkflowRecord(workflow_id="w", user_id="u", name="n", status=WorkflowStatus.running, created_at=0.0)
    snapshot = ProgressSnapshot.of(record, jobs)
    assert [j.percent for j in snapshot.jobs] == [100.0, 100.0, 50.0, 0.0, 0.0]
    assert snapshot.percent == pytest.approx(50.0)
    assert ProgressSnapshot.of(record, []).percent == 0.0


def test_only_the_artifacts_a_result_lists_are_served() -> None:
    job = _job("a", JobStatus.succeeded, result={"artifacts": ["mask.png"]})
    assert job.lists_artifact("mask.png")
    assert not job.lists_artifact("summary.json")
    assert not _job("b", JobStatus.running).lists_artifact("mask.png")
