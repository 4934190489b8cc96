"""The run graph of a workflow: order edges (list order inside a branch) plus `depends_on` edges."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol


class JobLike(Protocol):
    @property
    def job_id(self) -> str: ...
    @property
    def branch(self) -> str: ...
    @property
    def depends_on(self) -> list[str]: ...


def branches_of(jobs: Iterable[JobLike]) -> dict[str, list[str]]:
    """Branch name → its job ids in run (list) order; branches in order of first appearance."""
    lanes: dict[str, list[str]] = {}
    for job in jobs:
        lanes.setdefault(job.branch, []).append(job.job_id)
    return lanes


def predecessors(jobs: Sequence[JobLike]) -> dict[str, list[str]]:
    """Job id → the jobs that must finish before it: the previous job of its branch, then depends_on."""
    previous_in_branch: dict[str, str] = {}
    preds: dict[str, list[str]] = {}
    for job in jobs:
        before = previous_in_branch.get(job.branch)
        preds[job.job_id] = ([before] if before else []) + [d for d in job.depends_on if d != before]
        previous_in_branch[job.branch] = job.job_id
    return preds


def find_cycle(preds: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle as a closed path [a, b, …, a] in run order (a runs before b), or None if acyclic."""
    try:
        graphlib.TopologicalSorter(preds).prepare()
    except graphlib.CycleError as error:
        # graphlib gives the cycle closed, each node an immediate predecessor of the next.
        return list(error.args[1])
    return None
