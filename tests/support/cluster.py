"""A multi-node Ray cluster on this one machine: `ray.cluster_utils.Cluster`, each node with its own
raylet, object store and worker processes, as separate machines would have them.

Worker nodes get logical GPUs, so GPU-shaped tasks are placed on them as on a GPU cluster (the
code then runs on the CPU). Every node starts with the environment cluster.yaml's start commands
give a real one: usage stats off and Serve's proxy request id check; and, here, this checkout
on the workers' import path. The test process starts the nodes but never joins the cluster (no
`ray.init`), so it keeps whatever Ray the rest of the session uses.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import psutil
from ray._private import ray_constants
from ray._private.node import Node
from ray.cluster_utils import Cluster

from tests.support.service import ROOT
from wfsched.observe import logs

NODE_ENV = {
    "PYTHONPATH": str(ROOT),
    "RAY_USAGE_STATS_ENABLED": "0",
    logs.PROXY_CALLBACK_ENV: logs.PROXY_CALLBACK,
}
# One CPU a node keeps the cluster small on a small machine. The head has no GPU, as cluster.yaml's
# head has none (and cluster-onprem.yaml's starts with --num-gpus=0): segmentation runs on workers.
HEAD_NODE: dict[str, Any] = {"num_cpus": 1, "num_gpus": 0, "include_dashboard": False, "env_vars": NODE_ENV}
GPU_WORKER_NODE: dict[str, Any] = {"num_cpus": 1, "num_gpus": 1, "env_vars": NODE_ENV}

# What `segment_tiles` logs for each batch it finishes (wfsched/imaging/segment_task.py).
_SEGMENTED = re.compile(r"segmented \d+ tiles on .* \(tiles ([\d, ]+)\)$")


@contextlib.contextmanager
def local_cluster() -> Iterator[Cluster]:
    """A head node alone; add workers with `cluster.add_node(**GPU_WORKER_NODE)`. Shut down after."""
    cluster = Cluster(initialize_head=True, head_node_args=HEAD_NODE)
    try:
        yield cluster
    finally:
        cluster.shutdown()


def head_node(cluster: Cluster) -> Node:
    # cluster_utils is untyped: mypy takes the head for the None it starts as.
    return cast(Node, cluster.head_node)


def logs_dir(cluster: Cluster) -> Path:
    """The session's log folder, which every node of a cluster on one machine writes into."""
    return Path(head_node(cluster).get_session_dir_path()) / "logs"


def actor_nodes(cluster: Cluster) -> dict[str, str]:
    """Node id of every live named actor, by name, as the cluster's GCS records it."""
    table: dict[str, dict[str, Any]] = cluster.global_state.actor_table(None, actor_state_name="ALIVE")
    return {actor["Name"]: actor["Address"]["NodeID"] for actor in table.values() if actor["Name"]}


def _raylet(node: Node) -> psutil.Process:
    return psutil.Process(node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid)


def running_tasks(node: Node, function: str) -> int:
    """How many of the node's worker processes run a task of `function` right now.

    A worker is a child of its node's raylet, and Ray titles it `ray::<task name>` while it runs
    a task (`ray::IDLE` between tasks); wfsched names its tasks `<function> <tenant/workflow/job>`
    (observe/logs.py, `task_name`).
    """
    count = 0
    for process in _raylet(node).children():
        with contextlib.suppress(psutil.NoSuchProcess):
            command = process.cmdline()
            count += bool(command) and command[0].partition(" ")[0] == f"ray::{function}"
    return count


def fail_node(cluster: Cluster, node: Node) -> None:
    """What a failed machine does to a node: every process of it killed at once, its workers too.

    `Cluster.remove_node` kills the node's own processes (raylet, agents) but leaves its workers
    to notice and exit, which takes them a moment in which a task could still finish and answer.
    """
    workers = _raylet(node).children(recursive=True)
    for process in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    cluster.remove_node(node, allow_graceful=False)
    psutil.wait_procs(workers, timeout=10)


@dataclass(frozen=True)
class FinishedBatch:
    """One batch a segmentation task finished, from its JSON log line."""

    node_id: str
    indices: tuple[int, ...]
    """The tiles it segmented."""
    at_ns: int

    @property
    def tiles(self) -> int:
        return len(self.indices)


def finished_batches(logs_folder: Path, workflow_id: str, job_id: str) -> list[FinishedBatch]:
    """Every batch of the job that a task logged as finished, in the order they finished.

    Each task's log line carries the job's ids (observe/logs.py) and Ray's own `node_id` and
    `timestamp_ns`: where and when it ran.
    """
    found = []
    for path in logs_folder.glob("worker-*.err"):
        # The last piece is a line still being written, or empty.
        for line in path.read_text(errors="replace").split("\n")[:-1]:
            if workflow_id not in line or not line.startswith("{"):
                continue
            record = json.loads(line)
            match = _SEGMENTED.match(record.get("message", ""))
            if match and record.get("workflow_id") == workflow_id and record.get("job_id") == job_id:
                indices = tuple(int(index) for index in match.group(1).split(", "))
                found.append(FinishedBatch(record["node_id"], indices, int(record["timestamp_ns"])))
    return sorted(found, key=lambda batch: batch.at_ns)
