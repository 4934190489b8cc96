"""Scheduler benchmark: many small workflows from many users through the real service.

Prints the submissions/s the API accepts (`--clients` submissions on their way at once), the
scheduling overhead per job (its predecessors done → it started; p50, p99, and by what the job
waited for: its branch predecessor alone, which the lane follows at once, a dependency, which the
scheduler releases, or admission) and the makespan against the ideal makespan of the same DAGs,
arrival times and active-user slots with zero overhead (a simulation using wfsched's own admission
and branch rules), as a ratio; the seconds in which most of the slowest 1% of jobs could start, with
whose workflows were admitted then or the second before (what the p99 is made of); the CPU each
process used while the submissions came and while the rest ran (where the two cores went); then
what the run left behind: each actor's memory and the database file's size.

Two peers, measured first in the same run on the idle service, say what this machine allows today
(the same code ran two to three times faster on some days than on others): the same clients
sending submissions the API refuses before it calls the scheduler (a job type nobody registered,
answered 422), which is the most submissions/s the ingress and the API replica take here; and a
call that goes from this process to the scheduler, from it to every lane host and back, timed
alone, the four hops between processes of which a job released by a dependency needs two.

    python bench/scheduler.py [--workflows 200 --jobs 10 --branches 4 --users 10 --job-s 0.5 --clients 16]
    python bench/scheduler.py --workflows 2000 --jobs 10 --users 30    # ten times the seed's scale
    python bench/scheduler.py --workflows 2000 --jobs 10 --users 30 --ingress haproxy
    python bench/scheduler.py ... --timings jobs.jsonl    # and every job's times, to look into

The jobs are `sleep` jobs: they do no work, they only take `--job-s` each, so that the ideal
makespan is not zero and the overhead shows against it.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import heapq
import json
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ray

from bench.processes import cpu_seconds, print_cpu, ray_workers
from tests.support.service import Api, bench_service
from wfsched.config import Settings
from wfsched.control.actors import SCHEDULER_NAME
from wfsched.control.admission import AdmissionState
from wfsched.control.run import WorkflowRun
from wfsched.models.state import JobRecord, JobStatus, WorkflowRecord, WorkflowStatus


def make_workflow(rng: random.Random, n_jobs: int, n_branches: int, job_s: float, image: str) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    for i in range(n_jobs):
        earlier = [j["job_id"] for j in jobs]
        deps = rng.sample(earlier, k=min(len(earlier), rng.choice([0, 0, 1])))
        jobs.append(
            {
                "job_id": f"j{i}",
                "job_type": "sleep",
                "image_path": image,
                "branch": f"b{i % n_branches}",
                "depends_on": deps,
                "params": {"duration_s": job_s, "steps": 0},
            }
        )
    return jobs


def ideal_makespan(arrivals: list[tuple[float, str, list[dict[str, Any]]]], max_users: int, job_s: float) -> float:
    """Simulate the same workflows with zero overhead: same arrivals, slots, branch and dependency rules."""
    admission = AdmissionState(max_users)
    runs: dict[str, WorkflowRun] = {}
    clock: list[tuple[float, int, str, str]] = []  # (time, tie, kind, workflow/job)
    tie = 0

    def push(t: float, kind: str, key: str) -> None:
        nonlocal tie
        tie += 1
        heapq.heappush(clock, (t, tie, kind, key))

    for index, (t, user, jobs) in enumerate(arrivals):
        workflow_id = f"w{index}"
        record = WorkflowRecord(workflow_id=workflow_id, user_id=user, name="", created_at=t)
        runs[workflow_id] = WorkflowRun(
            record,
            [
                JobRecord(
                    workflow_id=workflow_id,
                    job_id=j["job_id"],
                    index=i,
                    branch=j["branch"],
                    job_type="sleep",
                    image_path="",
                    depends_on=j["depends_on"],
                )
                for i, j in enumerate(jobs)
            ],
        )
        push(t, "arrive", workflow_id)
    end = 0.0

    def start_ready(t: float, run: WorkflowRun) -> None:
        for job in run.startable():
            job.status = JobStatus.running
            push(t + job_s, "finish", f"{run.workflow_id}/{job.job_id}")

    while clock:
        t, _, kind, key = heapq.heappop(clock)
        end = max(end, t)
        if kind == "arrive":
            run = runs[key]
            if admission.submit(key, run.user_id):
                run.record.status = WorkflowStatus.running
                start_ready(t, run)
            continue
        workflow_id, job_id = key.split("/")
        run = runs[workflow_id]
        run.jobs[job_id].status = JobStatus.succeeded
        start_ready(t, run)
        if run.outcome() is not None:
            for admitted in admission.finish(run.user_id):
                runs[admitted].record.status = WorkflowStatus.running
                start_ready(t, runs[admitted])
    return end - arrivals[0][0]


# What a job waited for, in the breakdown of the overhead: only its branch predecessor (the lane
# starts it at once), a dependency (the scheduler starts it), or nothing but admission.
KINDS = ("after its branch predecessor", "after a dependency", "after admission")


def overheads_s(workflow: dict[str, Any]) -> list[tuple[str, float, float]]:
    """For each job: what it waited for, its start minus the moment it could start (predecessors
    done, or admission), and that moment."""
    jobs = {j["job_id"]: j for j in workflow["jobs"]}
    previous: dict[str, str] = {}
    result = []
    for job in workflow["jobs"]:
        preds = [previous[job["branch"]]] if job["branch"] in previous else []
        kind = KINDS[1] if job["depends_on"] else KINDS[0] if preds else KINDS[2]
        preds += job["depends_on"]
        ready_at = max([workflow["admitted_at"], *(jobs[p]["finished_at"] for p in preds)])
        result.append((kind, job["started_at"] - ready_at, ready_at))
        previous[job["branch"]] = job["job_id"]
    return result


def print_slowest_moments(
    jobs: list[tuple[str, float, float]], admissions: list[tuple[float, str]], first_arrival: float
) -> None:
    """When the slowest 1% of jobs could start, by the second (after the first submission), the
    three busiest seconds: what those jobs waited for, and whose workflows were admitted then or
    the second before (a wave of dependency releases follows its admission by a job's length).
    `jobs` as `overheads_s` gives them; `admissions` (admitted at, user) per workflow."""
    slowest = sorted(jobs, key=lambda job: -job[1])[: max(1, len(jobs) // 100)]
    by_second: dict[int, list[str]] = collections.defaultdict(list)
    for kind, _, ready in slowest:
        by_second[int(ready - first_arrival)].append(kind)
    print(f"the slowest 1% ({len(slowest)} jobs) could start at:")
    admitted_in = [(int(at - first_arrival), user) for at, user in admissions]
    for second, kinds in sorted(by_second.items(), key=lambda item: -len(item[1]))[:3]:
        admitted = ", ".join(sorted({user for at, user in admitted_in if 0 <= second - at <= 1})) or "none"
        waited = ", ".join(f"{n} {kind}" for kind, n in collections.Counter(kinds).most_common())
        print(f"  {second:4d} s: {len(kinds)} jobs ({waited}); admitted then or just before: {admitted}")


def write_timings(path: Path, finished: list[tuple[Api, Any, dict[str, Any]]], first_arrival: float) -> None:
    """One JSON line a job: whose, what it waited for, and its times in seconds after the first submission."""
    with path.open("w") as out:
        for user, _, workflow in finished:
            for job, (kind, overhead_s, ready_at) in zip(workflow["jobs"], overheads_s(workflow), strict=True):
                line = {
                    "user": user.user,
                    "workflow_id": workflow["workflow_id"],
                    "job_id": job["job_id"],
                    "branch": job["branch"],
                    "depends_on": job["depends_on"],
                    "waited_for": kind,
                    "admitted_at": workflow["admitted_at"] - first_arrival,
                    "ready_at": ready_at - first_arrival,
                    "started_at": job["started_at"] - first_arrival,
                    "overhead_ms": 1000 * overhead_s,
                }
                out.write(json.dumps(line) + "\n")
    print(f"every job's timings: {path}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflows", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--branches", type=int, default=4)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--job-s", type=float, default=0.5)
    parser.add_argument("--max-active-users", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16, help="submissions on their way at once")
    parser.add_argument(
        "--ingress", choices=["serve", "haproxy"], default="serve", help="what answers HTTP (WFSCHED_INGRESS)"
    )
    parser.add_argument("--timings", type=Path, help="also write every job's timings here (JSON lines)")
    args = parser.parse_args()

    # The served defaults, but for the test job types and the limit asked for (tests check lanes every 1 s).
    overrides = {
        "ingress": args.ingress,
        "max_active_users": args.max_active_users,
        "reconcile_interval_s": Settings().reconcile_interval_s,
    }
    with bench_service(**overrides) as (settings, base):
        run_benchmark(args, base, str(settings.data_roots[0] / "none.svs"), settings.namespace)
        print_footprint(settings.db)


def print_footprint(db: Path) -> None:
    """Resident memory of each actor's process, and the SQLite file with its WAL."""
    import psutil

    for name, process in ray_workers():
        with contextlib.suppress(psutil.Error):
            print(f"memory {name + ':':28s} {process.memory_info().rss / 2**20:8.1f} MiB")
    size_mb = sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 2**20
    print(f"database file (with WAL):    {size_mb:8.1f} MiB  ({db.name})")


def wait_until_all_finished(users: list[Api], poll_s: float = 3.0) -> None:
    """Poll until no user has a queued or running workflow. The service is this benchmark's own,
    so one workflow of each status per user (`limit=1`) answers that: a few small requests a
    second, so that the benchmark's own reads do not eat the CPU it measures. Each list is served
    by the scheduler, the actor being measured."""
    waiting = list(users)
    deadline = time.monotonic() + 3600
    while waiting:
        assert time.monotonic() < deadline, "the benchmark's workflows did not finish within an hour"
        time.sleep(poll_s)
        for user in list(waiting):
            unfinished = any(
                user.request("GET", "/api/workflows", params={"status": status, "limit": 1}).json()["workflows"]
                for status in ("queued", "running")
            )
            if not unfinished:
                waiting.remove(user)


# Requests each peer makes.
PEER_SUBMISSIONS = 400
PEER_CALLS = 200
UNREGISTERED_JOB_TYPE = "bench-unregistered"


def peer_refused_submissions(plan: list[tuple[Api, list[dict[str, Any]]]], clients: int) -> float:
    """Submissions/s of the plan's first workflows with a job type nobody registered: each is read,
    parsed and validated by the API, answered 422, and never reaches the scheduler. Timed after a
    few of them have opened the clients' connections and warmed the replica."""
    refused = [(user, [{**job, "job_type": UNREGISTERED_JOB_TYPE} for job in jobs]) for user, jobs in plan]
    refused = refused[:PEER_SUBMISSIONS]

    def send(user: Api, jobs: list[dict[str, Any]]) -> int:
        return user.request("POST", "/api/workflows", json={"name": "peer", "jobs": jobs}).status_code

    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(lambda p: send(*p), refused[: 4 * clients]))  # the connections and the replica warmed
        started = time.time()
        statuses = list(pool.map(lambda p: send(*p), refused))
        elapsed_s = time.time() - started
    assert set(statuses) == {422}, f"the peer's submissions were answered {collections.Counter(statuses)}, not 422"
    return len(refused) / elapsed_s


def peer_hops_ms(namespace: str) -> list[float]:
    """Each of `PEER_CALLS` calls, one at a time, to the scheduler's `ready`, which asks every lane
    host and answers: this process → scheduler → lane hosts → scheduler → this process."""
    scheduler = ray.get_actor(SCHEDULER_NAME, namespace=namespace)
    ray.get(scheduler.ready.remote())
    took = []
    for _ in range(PEER_CALLS):
        started = time.perf_counter()
        ray.get(scheduler.ready.remote())
        took.append(1000 * (time.perf_counter() - started))
    return took


def run_benchmark(args: argparse.Namespace, base: str, image: str, namespace: str) -> None:
    rng = random.Random(7)
    users = [Api(base, f"bench-user-{u}") for u in range(args.users)]
    plan = [
        (users[i % args.users], make_workflow(rng, args.jobs, args.branches, args.job_s, image))
        for i in range(args.workflows)
    ]
    hops_ms = peer_hops_ms(namespace)
    refused_per_s = peer_refused_submissions(plan, args.clients)
    phases = [("", time.time(), cpu_seconds())]
    started = time.time()
    with ThreadPoolExecutor(max_workers=args.clients) as pool:
        created = list(pool.map(lambda p: (p[0], p[1], p[0].submit(p[1])), plan))
    submit_s = time.time() - started
    phases.append(("submitting", time.time(), cpu_seconds()))
    wait_until_all_finished(users)
    phases.append(("the rest ran", time.time(), cpu_seconds()))
    # Read once it is all over: the timestamps in them are the measurements, not when they are read.
    finished = [(user, jobs, user.workflow(c["workflow_id"])) for user, jobs, c in created]
    assert all(w["status"] == "succeeded" for _, _, w in finished), "a benchmark workflow did not succeed"
    first_arrival = min(w["created_at"] for _, _, w in finished)
    makespan = max(j["finished_at"] for _, _, w in finished for j in w["jobs"]) - first_arrival
    arrivals = sorted((w["created_at"], u.user, jobs) for u, jobs, w in finished)
    ideal = ideal_makespan(arrivals, args.max_active_users, args.job_s)
    timed = [job for _, _, w in finished for job in overheads_s(w)]
    overheads = [(kind, 1000 * o) for kind, o, _ in timed]
    overheads_ms = [o for _, o in overheads]
    n_jobs = len(overheads_ms)
    print(
        f"workflows: {args.workflows} x {args.jobs} jobs over {args.branches} branches, {args.users} users, "
        f"limit {args.max_active_users}, job {args.job_s} s, {args.ingress} ingress"
    )
    print(
        f"submissions/s accepted:      {args.workflows / submit_s:8.1f}  "
        f"(target >= 100; {args.workflows} in {submit_s:.2f} s, {args.clients} at once)"
    )
    print(f"  peer: refused before the scheduler: {refused_per_s:6.1f}/s  (422, {PEER_SUBMISSIONS}, idle service)")
    print(f"scheduling overhead p50:     {statistics.median(overheads_ms):8.1f} ms  (target < 20 ms; {n_jobs} jobs)")
    print(f"scheduling overhead p99:     {percentile(overheads_ms, 0.99):8.1f} ms  (target < 100 ms)")
    for kind in KINDS:
        of_kind = [o for k, o in overheads if k == kind]
        print(
            f"  {kind + ':':29s} p50 {statistics.median(of_kind):6.1f} ms, p99 {percentile(of_kind, 0.99):6.1f} ms"
            f"  ({len(of_kind)} jobs)"
        )
    print(
        f"  peer: scheduler and lane hosts, idle: p50 {statistics.median(hops_ms):6.1f} ms, "
        f"p99 {percentile(hops_ms, 0.99):6.1f} ms  (4 hops between processes; a dependency's release takes 2)"
    )
    print(f"makespan:                    {makespan:8.2f} s")
    print(f"ideal makespan (simulated):  {ideal:8.2f} s")
    print(f"makespan / ideal:            {makespan / ideal:8.2f} x  (target <= 1.1)")
    print_slowest_moments(timed, [(w["admitted_at"], u.user) for u, _, w in finished], first_arrival)
    if args.timings:
        write_timings(args.timings, finished, first_arrival)
    print_cpu(phases)


if __name__ == "__main__":
    main()
