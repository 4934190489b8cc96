"""wfsched on a multi-node Ray cluster: control on the head, segmentation on the GPU workers, and a
worker lost in the middle of a segmentation costs the job nothing but time.

The cluster is a head and two GPU workers on this machine (tests/support/cluster.py); the service
runs as on cluster.yaml's head, `wfsched serve --address <head>`, in a process of its own. One
worker is there when the service starts, so its actors had a choice of node; the second joins
later, as an autoscaler adds one, so it hosts segmentation tasks only, and it is the one removed
(killed, as a failed machine is) while it runs a batch. Where batches ran comes from their JSON
log lines, which carry Ray's node id.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ray._private.node import Node
from ray.cluster_utils import Cluster

from tests.support.cluster import (
    GPU_WORKER_NODE,
    actor_nodes,
    fail_node,
    finished_batches,
    head_node,
    local_cluster,
    logs_dir,
    running_tasks,
)
from tests.support.service import Api, free_port, running_service, service_env
from tests.support.slides import sample_crop
from wfsched.control.actors import PROGRESS_NAME, SCHEDULER_NAME

pytestmark = pytest.mark.slow

# Tiles per task: small, so the crop's ~30 tiles of 256 px make many batches to lose one among.
TILES_PER_BATCH = 2
# How long the workflow may take once a node is gone. The lost batch's task fails at once (its
# worker is gone) and Ray runs it again; the other worker segments the rest (seconds a batch here,
# where a run took 20-85 s). Generous, for a 2-core machine that other tests share: it bounds a
# hang, it does not measure speed.
FINISH_AFTER_LOSS_S = 420


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with local_cluster() as cluster:
        cluster.add_node(**GPU_WORKER_NODE)
        yield cluster


@pytest.fixture(scope="module")
def service(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`wfsched serve` joined to the cluster: its URL and data root."""
    base = tmp_path_factory.mktemp("multinode")
    env = {
        **service_env(base, free_port()),
        "WFSCHED_ADDRESS": cluster.address,
        "WFSCHED_NUM_GPUS_PER_TASK": "1",
    }
    with running_service(env, base / "service.log"):
        yield f"http://127.0.0.1:{env['WFSCHED_PORT']}", base / "data"


@pytest.mark.usefixtures("service")
def test_the_scheduler_and_progress_actors_run_on_the_head(cluster: Cluster) -> None:
    # A GPU worker was there when the service made them: the head is where they were put, not all there was.
    placed, head = actor_nodes(cluster), head_node(cluster).node_id
    assert placed[SCHEDULER_NAME] == head, placed
    assert placed[PROGRESS_NAME] == head, placed


def test_segmentation_runs_on_gpu_workers_in_branch_order_and_survives_losing_one(
    cluster: Cluster, service: tuple[str, Path]
) -> None:
    base_url, data_dir = service
    (first,) = cluster.worker_nodes
    second = cluster.add_node(**GPU_WORKER_NODE)
    crop = str(sample_crop(data_dir / "multinode"))
    api = Api(base_url, f"lab-{uuid.uuid4().hex[:8]}")
    cells_params = {"tile_size_px": 256, "halo_px": 64, "batch_size": TILES_PER_BATCH}
    submitted = api.submit(
        [
            {"job_id": "mask", "job_type": "tissue_mask", "image_path": crop, "branch": "slide"},
            {
                "job_id": "cells",
                "job_type": "cell_segmentation",
                "image_path": crop,
                "branch": "slide",
                "depends_on": ["mask"],
                "params": cells_params,
            },
            {"job_id": "after", "job_type": "tissue_mask", "image_path": crop, "branch": "slide"},
        ],
        name="multinode",
    )
    workflow_id = submitted["workflow_id"]

    loss = remove_while_it_segments(cluster, second, api, workflow_id)
    workflow = api.wait(workflow_id, timeout_s=FINISH_AFTER_LOSS_S, poll_s=0.5)

    jobs = {job["job_id"]: job for job in workflow["jobs"]}
    assert workflow["status"] == "succeeded", workflow
    assert jobs["mask"]["finished_at"] <= jobs["cells"]["started_at"]
    assert jobs["cells"]["finished_at"] <= jobs["after"]["started_at"]

    batches = finished_batches(logs_dir(cluster), workflow_id, "cells")
    by_node = {node: sum(b.tiles for b in batches if b.node_id == node) for node in {b.node_id for b in batches}}
    # Both GPU workers segmented, the head never did; the lost node nothing more after it was gone.
    assert set(by_node) == {first.node_id, second.node_id}, batches
    assert by_node[second.node_id] == loss.tiles_finished_there, (loss, batches)
    assert {b.node_id for b in batches if b.at_ns > loss.at_ns} == {first.node_id}, (loss, batches)

    summary = jobs["cells"]["result"]
    # The job went on where it was (no restart from checkpoints) and every tile was segmented. A
    # tile was segmented twice only if the lost node had finished it: its batch's result was still
    # there when the node went, and Ray ran that task again on the other node.
    assert summary["tiles_resumed_from_checkpoint"] == 0, summary
    runs = Counter(index for batch in batches for index in batch.indices)
    assert sorted(runs) == list(range(summary["tiles_segmented"])), (runs, summary)
    lost_there = {index for b in batches if b.node_id == second.node_id for index in b.indices}
    assert {index for index, n in runs.items() if n > 1} <= lost_there, (runs, batches)
    assert max(runs.values()) <= 2, runs
    assert summary["cell_count"] > 0


@dataclass(frozen=True)
class Loss:
    at_ns: int
    """When the node was gone, on the log lines' clock."""
    tiles_finished_there: int
    """Tiles of the job the node had finished by then (its log lines)."""


def remove_while_it_segments(cluster: Cluster, node: Node, api: Api, workflow_id: str, timeout_s: float = 600) -> Loss:
    """Fail `node` once it has finished a batch of the job `cells` and runs another, with several
    batches still to go."""
    deadline = time.monotonic() + timeout_s
    while True:
        cells = _job(api.workflow(workflow_id), "cells")
        assert cells["status"] in ("pending", "running"), f"the job ended before the node could be removed: {cells}"
        batches = finished_batches(logs_dir(cluster), workflow_id, "cells")
        finished_there = sum(batch.tiles for batch in batches if batch.node_id == node.node_id)
        remaining = cells["progress_total"] - cells["progress_done"]
        if finished_there and remaining >= 4 * TILES_PER_BATCH and running_tasks(node, "segment_tiles"):
            fail_node(cluster, node)
            at_ns = time.time_ns()
            # Counted again once it is gone: a batch may have finished there since the count above.
            batches = finished_batches(logs_dir(cluster), workflow_id, "cells")
            return Loss(at_ns, sum(batch.tiles for batch in batches if batch.node_id == node.node_id))
        assert time.monotonic() < deadline, f"the node never got to segment: {cells}"
        time.sleep(0.1)


def _job(workflow: dict[str, Any], job_id: str) -> dict[str, Any]:
    return next(job for job in workflow["jobs"] if job["job_id"] == job_id)
