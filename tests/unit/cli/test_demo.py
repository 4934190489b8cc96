"""The demo's summary of each job: the few numbers a person reads first."""

from __future__ import annotations

from typing import Any

from wfsched.cli.demo import _summary
from wfsched.models.state import JobRecord, JobResult, JobStatus


def job(job_type: str, status: JobStatus, result: dict[str, Any] | None = None, error: str | None = None) -> JobRecord:
    return JobRecord(
        workflow_id="w",
        job_id="j",
        index=0,
        branch="b",
        job_type=job_type,
        image_path="/x",
        status=status,
        result=None if result is None else JobResult.model_validate(result),
        error=error,
    )


def test_a_segmentation_a_tissue_mask_and_a_failure_in_a_few_words() -> None:
    cells = {
        "cell_count": 12345,
        "target": "nuclei",
        "tissue_area_mm2": 4.2123,
        "cells_per_mm2": 2930.6,
        "tiles_segmented": 36,
        "segment_s": 181.24,
    }
    assert _summary(job("cell_segmentation", JobStatus.succeeded, cells)) == (
        "12,345 nuclei on 4.21 mm², 2,931 per mm²; 36 tiles in 181.2 s"
    )
    tissue = {"tissue_area_mm2": 4.2123, "tissue_fraction": 0.382}
    assert _summary(job("tissue_mask", JobStatus.succeeded, tissue)) == "4.21 mm² of tissue (38 % of the slide)"
    assert _summary(job("tissue_mask", JobStatus.failed, error="not a slide")) == "not a slide"
    assert _summary(job("sleep", JobStatus.succeeded, {"slept_s": 1})) == ""
