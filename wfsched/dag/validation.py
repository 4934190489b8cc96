"""Checks a submission before it is accepted: everything that would make it fail or deadlock."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from wfsched.dag.graph import find_cycle, predecessors
from wfsched.exceptions import InvalidWorkflowError
from wfsched.models.workflow import JobSubmission, WorkflowSubmission

Problem = dict[str, str | None]
ParamsModels = Mapping[str, type[BaseModel]]
PathCheck = Callable[[str], None]
"""Raises InvalidWorkflowError when an image path is not allowed; None skips the check."""


def validate_workflow(
    workflow: WorkflowSubmission,
    params_models: ParamsModels,
    max_jobs: int,
    check_image_path: PathCheck | None = None,
) -> dict[str, dict[str, Any]]:
    """Raise InvalidWorkflowError naming every bad job; return each job's validated params."""
    if not workflow.jobs:
        raise InvalidWorkflowError("the workflow has no jobs", [_problem(None, "the workflow has no jobs")])
    if len(workflow.jobs) > max_jobs:
        reason = f"the workflow has {len(workflow.jobs)} jobs, more than the maximum of {max_jobs}"
        raise InvalidWorkflowError(reason, [_problem(None, reason)])
    problems = _duplicate_ids(workflow.jobs)
    known = {job.job_id for job in workflow.jobs}
    params: dict[str, dict[str, Any]] = {}
    for job in workflow.jobs:
        problems += _dependency_problems(job, known)
        problems += _image_problems(job, check_image_path)
        job_params, params_problems = _params(job, params_models)
        problems += params_problems
        params[job.job_id] = job_params
    if not problems:
        problems += _cycle_problems(workflow.jobs)
    if problems:
        raise InvalidWorkflowError("; ".join(_sentence(p) for p in problems), problems)
    return params


def _problem(job_id: str | None, reason: str) -> Problem:
    return {"job_id": job_id, "reason": reason}


def _sentence(problem: Problem) -> str:
    return f"job {problem['job_id']!r}: {problem['reason']}" if problem["job_id"] else str(problem["reason"])


def _duplicate_ids(jobs: list[JobSubmission]) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for job in jobs:
        if job.job_id in seen:
            problems.append(_problem(job.job_id, "duplicate job_id: job ids must be unique in a workflow"))
        seen.add(job.job_id)
    return problems


def _dependency_problems(job: JobSubmission, known: set[str]) -> list[Problem]:
    problems = []
    for dep in job.depends_on:
        if dep == job.job_id:
            problems.append(_problem(job.job_id, "depends on itself"))
        elif dep not in known:
            problems.append(_problem(job.job_id, f"depends_on names unknown job {dep!r}"))
    if len(set(job.depends_on)) != len(job.depends_on):
        problems.append(_problem(job.job_id, "depends_on lists a job more than once"))
    return problems


def _image_problems(job: JobSubmission, check_image_path: PathCheck | None) -> list[Problem]:
    if not job.image_path.strip():
        return [_problem(job.job_id, "image_path is empty")]
    if check_image_path is None:
        return []
    try:
        check_image_path(job.image_path)
    except InvalidWorkflowError as exc:
        return [_problem(job.job_id, exc.detail)]
    return []


def _params(job: JobSubmission, params_models: ParamsModels) -> tuple[dict[str, Any], list[Problem]]:
    model = params_models.get(job.job_type)
    if model is None:
        known = ", ".join(sorted(params_models)) or "none"
        return {}, [_problem(job.job_id, f"unknown job_type {job.job_type!r} (known: {known})")]
    try:
        return model.model_validate(job.params).model_dump(mode="json"), []
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'params'}: {err['msg']}" for err in exc.errors()
        )
        return {}, [_problem(job.job_id, f"invalid params for {job.job_type}: {reasons}")]


def _cycle_problems(jobs: list[JobSubmission]) -> list[Problem]:
    cycle = find_cycle(predecessors(jobs))
    if cycle is None:
        return []
    by_id = {job.job_id: job for job in jobs}
    branch_edge = any(
        by_id[a].branch == by_id[b].branch and a not in by_id[b].depends_on for a, b in itertools.pairwise(cycle)
    )
    kind = "deadlock: branch order and depends_on form a cycle" if branch_edge else "dependency cycle"
    return [_problem(cycle[0], f"{kind}: {' → '.join(cycle)}")]
