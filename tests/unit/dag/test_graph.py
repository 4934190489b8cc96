from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from wfsched.dag.graph import branches_of, find_cycle, predecessors


@dataclass
class J:
    job_id: str
    branch: str = "main"
    depends_on: list[str] = field(default_factory=list)


def test_predecessors_are_branch_order_then_dependencies() -> None:
    jobs = [J("a", "x"), J("b", "y"), J("c", "x", ["b"]), J("d", "x", ["c"])]
    assert predecessors(jobs) == {"a": [], "b": [], "c": ["a", "b"], "d": ["c"]}
    assert branches_of(jobs) == {"x": ["a", "c", "d"], "y": ["b"]}


def test_cycle_is_returned_closed_in_run_order() -> None:
    cycle = find_cycle({"a": ["c"], "b": ["a"], "c": ["b"]})
    assert cycle is not None and cycle[0] == cycle[-1]
    # In run order each job needs the one before it.
    needs = {"a": "c", "b": "a", "c": "b"}
    assert all(needs[after] == before for before, after in itertools.pairwise(cycle))


def test_a_long_chain_is_acyclic_without_recursion_limits() -> None:
    preds = {f"j{i}": [f"j{i - 1}"] if i else [] for i in range(5000)}
    assert find_cycle(preds) is None
