"""The run graph of a workflow: order edges (list order inside a branch) plus `depends_on` edges."""

from __future__ import annotations

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
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(preds, white)
    for root in preds:
        if colour[root] != white:
            continue
        # Iterative DFS: a deep chain of 1000 jobs must not hit the recursion limit.
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        colour[root] = grey
        path.append(root)
        while stack:
            node, i = stack[-1]
            edges = preds.get(node, ())
            if i < len(edges):
                stack[-1] = (node, i + 1)
                nxt = edges[i]
                if nxt not in colour:
                    continue
                if colour[nxt] == grey:
                    cycle = [*path[path.index(nxt) :], nxt]
                    # The DFS walks "needs" edges; reverse to read in run order.
                    return list(reversed(cycle))
                if colour[nxt] == white:
                    colour[nxt] = grey
                    path.append(nxt)
                    stack.append((nxt, 0))
            else:
                colour[node] = black
                path.pop()
                stack.pop()
    return None
