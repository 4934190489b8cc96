"""The tile-batch dispatcher on real Ray: slots from the cluster, tenants taking turns, no leaks.

The ordering itself is proved in tests/unit/control (batch_queue, dispatcher_state); here the
actor, its client and the segmentation fan-out run for real: the service's own dispatcher for two
users' jobs, and dispatchers of the tests' own for what a cluster and a dead process do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
import ray

from tests.support.service import Api, job_spec
from wfsched.config import Settings
from wfsched.control import actors
from wfsched.control.dispatcher import ROUND_S, DispatcherActor, TaskSlots
from wfsched.types import Handle

LEASE_S = 2.0


@pytest.fixture
def make_dispatcher(service_settings: Settings) -> Iterator[Callable[..., Handle]]:
    """Dispatchers of the test's own (not the service's), on the test Ray: 2 CPUs, 1 logical GPU."""
    made: list[Handle] = []

    def make(**settings: object) -> Handle:
        dispatcher = DispatcherActor.options(num_cpus=0).remote(Settings(**settings))  # type: ignore[attr-defined]
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        ray.kill(dispatcher)


@ray.remote(num_cpus=0)
class Lane:
    """A process holding slots, as a lane host does while its segmentation runs."""

    def __init__(self, dispatcher: Handle) -> None:
        self.slots = TaskSlots(dispatcher, "lab", "lane-job#1", LEASE_S)

    def take(self, n: int) -> list[int | None]:
        return [future.result(timeout=60) for future in [self.slots.acquire(1.0) for _ in range(n)]]


def test_slots_are_the_cluster_gpus_over_gpus_per_task_and_auto_asks_one_gpu(
    make_dispatcher: Callable[..., Handle],
) -> None:
    auto = ray.get(make_dispatcher(num_gpus_per_task="auto").stats.remote())
    assert (auto["gpus_per_task"], auto["slots"]) == (1.0, 1)  # the test Ray has 1 logical GPU
    halves = ray.get(make_dispatcher(num_gpus_per_task=0.5).stats.remote())
    assert (halves["gpus_per_task"], halves["slots"]) == (0.5, 2)
    on_cpus = ray.get(make_dispatcher(num_gpus_per_task=0).stats.remote())
    assert (on_cpus["gpus_per_task"], on_cpus["slots"]) == (0.0, 2)  # the test Ray's 2 CPUs


def test_a_process_that_died_holding_slots_loses_them_when_its_lease_runs_out(
    make_dispatcher: Callable[..., Handle],
) -> None:
    dispatcher = make_dispatcher(num_gpus_per_task=0.5, slot_lease_s=LEASE_S)
    lane = Lane.remote(dispatcher)  # type: ignore[attr-defined]
    assert ray.get(lane.take.remote(2), timeout=60) == [0, 1]  # every slot
    ray.kill(lane)  # dies without giving them back
    killed_s = time.monotonic()
    other = TaskSlots(dispatcher, "clinic", "other#1", LEASE_S)
    waiting: Future[int | None] = other.acquire(1.0)
    deadline = time.monotonic() + LEASE_S + 2 * ROUND_S + 30
    while not waiting.done() and time.monotonic() < deadline:
        other.keep_alive()  # a live job renews its lease while it waits, as run_batches does
        time.sleep(0.1)
    assert waiting.result(timeout=1) == 0
    assert time.monotonic() - killed_s >= LEASE_S * 0.9
    stats = ray.get(dispatcher.stats.remote())
    assert (stats["held_by_tenant"], stats["waiting"]) == ({"clinic": 1}, 0)


def test_a_small_job_of_another_tenant_ends_long_before_a_big_one_asked_first(
    service_settings: Settings, make_user: Callable[[str], Api], data_dir: Path
) -> None:
    big, small = make_user("big"), make_user("small")
    image = data_dir
    big_id = big.submit([job_spec("big", image, job_type="sleep_batches", batches=30, batch_s=0.3)])["workflow_id"]
    # Once the big job's batches run, it has asked for all 30: first come first served would run
    # them all before any of the small job's.
    big.wait(big_id, until=lambda wf: wf["jobs"][0]["progress_done"] >= 1, timeout_s=120)
    small_id = small.submit([job_spec("small", image, job_type="sleep_batches", batches=4, batch_s=0.3)])["workflow_id"]
    small_job = small.wait(small_id, timeout_s=120)["jobs"][0]
    big_job = big.wait(big_id, timeout_s=120)["jobs"][0]
    assert small_job["status"] == big_job["status"] == "succeeded"
    small_ended = max(end for _, end in small_job["result"]["batch_times"])
    big_after = [start for start, _ in big_job["result"]["batch_times"] if start > small_ended]
    assert len(big_after) >= 5, (small_job, big_job)
    dispatcher = actors.existing(actors.DISPATCHER_NAME, service_settings)
    deadline = time.monotonic() + 30
    while (stats := ray.get(dispatcher.stats.remote()))["held"] or stats["waiting"]:
        assert time.monotonic() < deadline, stats  # closes are sent without waiting: give them a moment
        time.sleep(0.2)
    assert stats["slots"] == 2  # 1 logical GPU ÷ 0.5 per task
