"""Fair share benchmark: one big and two small segmentations of three tenants on logical GPUs.

Runs the same three submissions through one real service twice, once with the dispatcher's fair
order (weighted deficit round-robin over tenants) and once first come first served (the order of
Ray's own queue; the dispatcher is made anew between the two), and prints beside each other, with
their targets:

- Jain's index over accelerator-seconds while all three tenants are backlogged (target >= 0.9):
  from the last tenant's job start to the first tenant's last batch start, the GPU-seconds each
  tenant's batches held inside that window;
- each small job's completion time (submission to end) over its time alone on a third of the
  slots, measured in the same service before (the job alone, with a third of the slots as its
  `max_batches_in_flight`), so both carry the same per-batch costs of this machine (target <= 1.5);
- the makespan (first submission to last end), fair over FIFO (target <= 1.05: no slot wasted).

    python bench/fairness.py [--gpus 12 --batch-s 0.5 --big 500 --small 20 --delay-s 1]

The jobs are `sleep_batches` (tests/support/job_types.py): a segmentation's fan-out, through the
real `run_batches` and the dispatcher, whose tasks hold a logical GPU each (`num_gpus_per_task`
auto) for exactly `--batch-s`, so the ideal is known and the run is short.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ray

from tests.support.service import Api, bench_service
from wfsched.config import BatchOrder, Settings
from wfsched.control import actors
from wfsched.control.dispatcher import DispatcherActor

TENANTS = ("big", "small-1", "small-2")
# The scheduler, progress, dispatcher, Serve's controller, proxy and replica: worker processes too.
CONTROL_PROCESSES = 8
# Long enough for a host's workers to start while the first ones wait (two start at a time).
WARM_UP_BATCH_S = 3.0
# Jobs of a warm-up workflow, each on a branch of its own: all land on one of two hosts 1 time in 8.
WARM_UP_BRANCHES = 4


@dataclass(frozen=True)
class Run:
    """One tenant's job as the service reports it."""

    submitted_s: float
    started_s: float
    finished_s: float
    batches: list[tuple[float, float]]
    """When each batch's task started and ended."""


def jain_index(shares: list[float]) -> float:
    """1 when all shares are equal, 1/n when one holds everything (Jain, Chiu and Hawe, 1984)."""
    total = sum(shares)
    squares = sum(share * share for share in shares)
    return total * total / (len(shares) * squares) if squares > 0 else 1.0


def backlogged_window(runs: dict[str, Run]) -> tuple[float, float]:
    """While every tenant had a batch waiting or not yet asked: from the last job's start to the
    first moment a tenant's last batch started (nothing of its waited after that)."""
    return max(run.started_s for run in runs.values()), min(run.batches[-1][0] for run in runs.values())


def held_in(batches: list[tuple[float, float]], window: tuple[float, float]) -> float:
    """Seconds the batches held a slot inside the window."""
    start, end = window
    return sum(max(0.0, min(b_end, end) - max(b_start, start)) for b_start, b_end in batches)


@dataclass(frozen=True)
class Results:
    alone: dict[str, Run]
    """Each small job alone on a third of the slots."""
    shared: dict[BatchOrder, dict[str, Run]]
    """The three tenants' jobs, under each order."""


def run_all(args: argparse.Namespace) -> Results:
    """One service, its workers warmed, each small job alone, then the three tenants' jobs under
    each order in turn."""
    # Ray keeps as many idle workers as a node has CPUs and ends the rest after a second; a lane
    # host's tasks reuse only that host's workers (Ray matches workers by root detached actor). So:
    # room for a worker per slot and lane host, and the actors' processes, then every host warmed.
    cpus = args.gpus * Settings().branch_actors + CONTROL_PROCESSES
    ray_options = {"num_cpus": cpus, "num_gpus": args.gpus}
    with bench_service(ray_options, num_gpus_per_task="auto") as (settings, base):
        image = str(settings.data_roots[0] / "none.svs")
        warm_up(settings, Api(base, "warm-up"), image, args.gpus)
        alone = {}
        for tenant in TENANTS[1:]:
            user = Api(base, tenant)
            submitted = user.submit([job(tenant, image, args.small, args.batch_s, max_in_flight=args.gpus // 3)])
            alone[tenant] = finish(user, submitted["workflow_id"])[0]
        shared = {}
        for order in (BatchOrder.fair, BatchOrder.fifo):
            dispatch_in(order, settings)
            shared[order] = run_tenants(base, image, args)
        return Results(alone, shared)


def dispatch_in(order: BatchOrder, settings: Settings) -> None:
    """The dispatcher made anew with `order`: the jobs that start next find it by its name."""
    with contextlib.suppress(ValueError):
        ray.kill(actors.existing(actors.DISPATCHER_NAME, settings), no_restart=True)
    while True:  # the name is free once the actor is gone
        try:
            actors.existing(actors.DISPATCHER_NAME, settings)
        except ValueError:
            break
        time.sleep(0.1)
    ordered = settings.model_copy(update={"batch_order": order})
    dispatcher = actors.get_or_create(DispatcherActor, actors.DISPATCHER_NAME, ordered, on_head=True)
    ray.get(dispatcher.stats.remote())


def run_tenants(base: str, image: str, args: argparse.Namespace) -> dict[str, Run]:
    """The big job, then a moment later the two small ones; each as the service reports it."""
    users = {tenant: Api(base, tenant) for tenant in TENANTS}
    submitted = {"big": users["big"].submit([job("big", image, args.big, args.batch_s)])}
    time.sleep(args.delay_s)
    with ThreadPoolExecutor() as pool:  # at the same moment, as two users would
        smalls = {t: pool.submit(users[t].submit, [job(t, image, args.small, args.batch_s)]) for t in TENANTS[1:]}
    submitted |= {tenant: submission.result() for tenant, submission in smalls.items()}
    return {tenant: finish(users[tenant], submitted[tenant]["workflow_id"])[0] for tenant in TENANTS}


def warm_up(settings: Settings, user: Api, image: str, slots: int) -> None:
    """Until each lane host has run a job with every slot busy at once: its workers are started.

    A workflow of jobs on several branches, one after another (so each has every slot), lands
    them on lane hosts by a hash of its id; one that leaves a host out is followed by another.
    """
    warmed: set[int] = set()
    while len(warmed) < settings.branch_actors:
        jobs = [job(f"warm-{i}", image, slots, WARM_UP_BATCH_S) for i in range(WARM_UP_BRANCHES)]
        for i, spec in enumerate(jobs):
            spec |= {"branch": f"b{i}", "depends_on": [f"warm-{i - 1}"] if i else []}
        workflow_id = user.submit(jobs)["workflow_id"]
        for i, ran in enumerate(finish(user, workflow_id)):
            if most_at_once(ran.batches) == slots:
                warmed.add(actors.branch_index(settings, workflow_id, f"b{i}"))


def most_at_once(batches: list[tuple[float, float]]) -> int:
    """The most batches that ran at the same moment."""
    return max(sum(1 for start, end in batches if start <= moment < end) for moment, _ in batches)


def job(job_id: str, image: str, batches: int, batch_s: float, max_in_flight: int = 1024) -> dict[str, Any]:
    params = {"batches": batches, "batch_s": batch_s, "max_batches_in_flight": max_in_flight}
    return {"job_id": job_id, "job_type": "sleep_batches", "image_path": image, "params": params}


def finish(user: Api, workflow_id: str) -> list[Run]:
    """The workflow's jobs, in its order, once it has ended."""
    # Slow polling: the benchmark's own requests must not eat the CPU it measures.
    workflow = user.wait(workflow_id, timeout_s=1800, poll_s=0.5)
    runs = []
    for ran in workflow["jobs"]:
        assert ran["status"] == "succeeded", ran
        batches = [(float(start), float(end)) for start, end in ran["result"]["batch_times"]]
        runs.append(Run(workflow["created_at"], ran["started_at"], ran["finished_at"], batches))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, default=12, help="logical GPUs: one slot each")
    parser.add_argument("--batch-s", type=float, default=0.5, help="how long each batch holds its GPU")
    parser.add_argument("--big", type=int, default=500, help="batches of the big job")
    parser.add_argument("--small", type=int, default=20, help="batches of each small job")
    parser.add_argument("--delay-s", type=float, default=1.0, help="the small jobs come this much later")
    args = parser.parse_args()
    if args.gpus < 3:
        parser.error("--gpus must be at least 3: a third of them each")
    report(args, run_all(args))


def report(args: argparse.Namespace, results: Results) -> None:
    ideal_s = math.ceil(args.small / (args.gpus // 3)) * args.batch_s
    makespans = {
        order: max(r.finished_s for r in runs.values()) - min(r.submitted_s for r in runs.values())
        for order, runs in results.shared.items()
    }
    figures: dict[str, dict[BatchOrder, float]] = {"jain": {}, "small-1": {}, "small-2": {}}
    for order, runs in results.shared.items():
        window = backlogged_window(runs)
        figures["jain"][order] = jain_index([held_in(runs[tenant].batches, window) for tenant in TENANTS])
        for tenant in TENANTS[1:]:
            figures[tenant][order] = completion_s(runs[tenant]) / completion_s(results.alone[tenant])
    print(
        f"fairness: {args.gpus} logical GPUs (a slot each), batches of {args.batch_s} s; big: {args.big} batches, "
        f"small-1 and small-2: {args.small} batches each, {args.delay_s} s later"
    )
    print(f"{'':40s}{'fair':>8s}{'fifo':>8s}")
    row("Jain's index, all three backlogged", figures["jain"], "(target >= 0.9)")
    for tenant in TENANTS[1:]:
        alone = f"alone: {completion_s(results.alone[tenant]):.2f} s, ideal {ideal_s:.2f} s"
        row(f"{tenant} completion / alone on 1/3", figures[tenant], f"(target <= 1.5; {alone})")
    row("makespan (s)", makespans, "")
    ratio = makespans[BatchOrder.fair] / makespans[BatchOrder.fifo]
    print(f"{'makespan fair / fifo':40s}{ratio:8.2f} x      (target <= 1.05)")


def completion_s(run: Run) -> float:
    return run.finished_s - run.submitted_s


def row(name: str, figures: dict[BatchOrder, float], target: str) -> None:
    print(f"{name:40s}{figures[BatchOrder.fair]:8.2f}{figures[BatchOrder.fifo]:8.2f}  {target}")


if __name__ == "__main__":
    main()
