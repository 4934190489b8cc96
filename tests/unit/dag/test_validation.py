"""Every 422 case of a submission, checked without Ray or HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from wfsched.dag.validation import validate_workflow
from wfsched.exceptions import InvalidWorkflowError
from wfsched.models.workflow import WorkflowSubmission
from wfsched.store.paths import resolve_in_data_roots


class SleepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    duration_s: float = Field(default=0.0, ge=0, le=60)


PARAMS = {"sleep": SleepParams}


def job(job_id: str, branch: str = "main", depends_on: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "job_type": extra.pop("job_type", "sleep"),
        "image_path": extra.pop("image_path", "/data/a.svs"),
        "branch": branch,
        "depends_on": depends_on or [],
        **extra,
    }


def check(jobs: list[dict[str, Any]], max_jobs: int = 1000, path_check: Any = None) -> dict[str, Any]:
    workflow = WorkflowSubmission.model_validate({"name": "w", "jobs": jobs})
    return validate_workflow(workflow, PARAMS, max_jobs, path_check)


def problems(jobs: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    with pytest.raises(InvalidWorkflowError) as caught:
        check(jobs, **kwargs)
    assert caught.value.detail
    return caught.value.problems


def test_a_valid_workflow_returns_validated_params() -> None:
    params = check([job("a"), job("b", depends_on=["a"], params={"duration_s": 1})])
    assert params == {"a": {"duration_s": 0.0}, "b": {"duration_s": 1.0}}


def test_no_jobs() -> None:
    assert problems([]) == [{"job_id": None, "reason": "the workflow has no jobs"}]


def test_duplicate_job_id() -> None:
    found = problems([job("a"), job("a", branch="b2")])
    assert found[0]["job_id"] == "a" and "duplicate" in found[0]["reason"]


def test_unknown_dependency() -> None:
    found = problems([job("a", depends_on=["ghost"])])
    assert found == [{"job_id": "a", "reason": "depends_on names unknown job 'ghost'"}]


def test_self_dependency() -> None:
    assert problems([job("a", depends_on=["a"])]) == [{"job_id": "a", "reason": "depends on itself"}]


def test_dependency_cycle_is_named() -> None:
    found = problems([job("a", "x", ["c"]), job("b", "y", ["a"]), job("c", "z", ["b"])])
    assert len(found) == 1
    reason = found[0]["reason"]
    assert reason.startswith("dependency cycle:")
    assert {"a", "b", "c"} <= set(reason.split(": ", 1)[1].split(" → "))


def test_deadlock_from_branch_order_and_cross_branch_dependencies() -> None:
    # b1 = [A, B], b2 = [C, D]; A needs D (after C), C needs B (after A): nothing can start.
    found = problems([job("A", "b1", ["D"]), job("B", "b1"), job("C", "b2", ["B"]), job("D", "b2")])
    assert len(found) == 1
    assert found[0]["reason"].startswith("deadlock: branch order and depends_on form a cycle")
    assert all(name in found[0]["reason"] for name in "ABCD")


def test_cross_branch_dependency_without_cycle_is_accepted() -> None:
    check([job("A", "b1"), job("B", "b1", ["D"]), job("C", "b2"), job("D", "b2", ["A"])])


def test_unknown_job_type() -> None:
    found = problems([job("a", job_type="teleport")])
    assert found[0]["job_id"] == "a" and "unknown job_type 'teleport'" in found[0]["reason"]


def test_empty_image_path() -> None:
    assert problems([job("a", image_path="   ")]) == [{"job_id": "a", "reason": "image_path is empty"}]


def test_missing_image_path_is_a_model_error() -> None:
    with pytest.raises(ValueError, match="image_path"):
        WorkflowSubmission.model_validate({"name": "w", "jobs": [{"job_id": "a", "job_type": "sleep"}]})


def test_params_the_job_type_rejects() -> None:
    found = problems([job("a", params={"duration_s": -1}), job("b", params={"colour": "red"})])
    assert [p["job_id"] for p in found] == ["a", "b"]
    assert "duration_s" in found[0]["reason"] and "colour" in found[1]["reason"]


def test_more_jobs_than_the_maximum() -> None:
    found = problems([job(f"j{i}") for i in range(11)], max_jobs=10)
    assert "11 jobs, more than the maximum of 10" in found[0]["reason"]


def test_image_outside_data_roots(tmp_path: Path) -> None:
    inside = tmp_path / "slides"
    inside.mkdir()
    (tmp_path / "elsewhere.svs").write_bytes(b"")
    (inside / "link.svs").symlink_to(tmp_path / "elsewhere.svs")

    def path_check(p: str) -> None:
        resolve_in_data_roots(p, [inside])

    check([job("ok", image_path=str(inside / "a.svs"))], path_check=path_check)
    found = problems(
        [job("out", image_path=str(tmp_path / "elsewhere.svs")), job("via-link", image_path=str(inside / "link.svs"))],
        path_check=path_check,
    )
    assert [p["job_id"] for p in found] == ["out", "via-link"]
    assert all("outside the data roots" in p["reason"] for p in found)


def test_every_problem_is_reported_at_once() -> None:
    found = problems([job("a", depends_on=["ghost"]), job("a"), job("b", job_type="nope")])
    assert len(found) == 3
