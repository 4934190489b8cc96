"""Where lanes go: the pool of lane hosts (actors.branch_index)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from wfsched.config import Settings
from wfsched.control.actors import branch_index

WORKFLOWS = [uuid.UUID(int=n).hex for n in range(2_000)]


@pytest.mark.parametrize("hosts", [2, 3, 4])
@pytest.mark.parametrize("branches", [("a", "b"), ("b0", "b1", "b2", "b3"), ("main", "side")])
def test_the_branches_of_a_workflow_spread_over_the_hosts_as_if_at_random(
    hosts: int, branches: tuple[str, ...]
) -> None:
    settings = Settings(branch_actors=hosts)
    placements = [[branch_index(settings, workflow, branch) for branch in branches] for workflow in WORKFLOWS]
    # Each pair of branches shares a host for about 1 in `hosts` workflows, never always or never.
    for first in range(len(branches)):
        for second in range(first + 1, len(branches)):
            shared = sum(p[first] == p[second] for p in placements) / len(WORKFLOWS)
            assert abs(shared - 1 / hosts) < 0.05, (branches[first], branches[second], shared)
    # Every host gets its share of the lanes.
    lanes = [index for p in placements for index in p]
    for host in range(hosts):
        assert abs(lanes.count(host) / len(lanes) - 1 / hosts) < 0.03


def test_a_lane_lands_on_the_same_host_in_every_process() -> None:
    # The scheduler and a restarted scheduler must agree: Python's own str hash differs by process.
    here = [branch_index(Settings(branch_actors=4), workflow, "main") for workflow in WORKFLOWS[:50]]
    elsewhere = subprocess.run(
        [sys.executable, "-c", PLACEMENTS_ELSEWHERE],
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(elsewhere.stdout) == here
    assert set(here) == {0, 1, 2, 3}


PLACEMENTS_ELSEWHERE = """
import json, uuid
from wfsched.config import Settings
from wfsched.control.actors import branch_index
workflows = [uuid.UUID(int=n).hex for n in range(50)]
print(json.dumps([branch_index(Settings(branch_actors=4), w, "main") for w in workflows]))
"""
