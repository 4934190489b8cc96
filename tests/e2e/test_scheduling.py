"""Ordering, parallelism, failure and cancel, checked from recorded job times over HTTP."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from tests.support.service import Api
from tests.support.service import job_spec as job
from wfsched.config import Settings
from wfsched.control.actors import PROGRESS_NAME

FINISHED = ("succeeded", "failed", "skipped", "cancelled")


def random_workflow(rng: random.Random, data_dir: Path) -> list[dict[str, Any]]:
    """Jobs in a random topological order, on random branches, with random earlier dependencies.

    Depending only on earlier jobs, and ordering branches by list order, keeps it a DAG.
    """
    n_jobs, n_branches = rng.randint(2, 9), rng.randint(1, 4)
    jobs = []
    for i in range(n_jobs):
        earlier = [j["job_id"] for j in jobs]
        deps = rng.sample(earlier, k=min(len(earlier), rng.choice([0, 0, 1, 2])))
        jobs.append(
            job(
                f"j{i}",
                data_dir,
                f"b{rng.randrange(n_branches)}",
                deps,
                duration_s=rng.choice([0.0, 0.02, 0.05]),
                fail=rng.random() < 0.1,
            )
        )
    return jobs


def check_invariants(submitted: list[dict[str, Any]], workflow: dict[str, Any]) -> None:
    jobs = {j["job_id"]: j for j in workflow["jobs"]}
    spec = {j["job_id"]: j for j in submitted}
    ran = {k: j for k, j in jobs.items() if j["status"] in ("succeeded", "failed")}
    for branch, ids in workflow["branches"].items():
        started = [jobs[i] for i in ids if i in ran]
        # A branch's jobs start in list order and never overlap.
        for before, after in itertools.pairwise(started):
            assert before["finished_at"] <= after["started_at"], (branch, before, after)
    for job_id, job_state in jobs.items():
        deps = spec[job_id]["depends_on"]
        if job_id in ran:
            for dep in deps:
                assert jobs[dep]["status"] == "succeeded", (job_id, dep)
                assert jobs[dep]["finished_at"] <= job_state["started_at"], (job_id, dep)
        elif job_state["status"] == "skipped":
            # Skipped only because something it depends on did not succeed.
            assert any(jobs[d]["status"] != "succeeded" for d in deps), job_id
        else:
            raise AssertionError(f"{job_id} ended {job_state['status']}")
    expected = "failed" if any(j["status"] in ("failed", "skipped") for j in jobs.values()) else "succeeded"
    assert workflow["status"] == expected


def test_ordering_invariants_hold_over_many_random_dags(make_user: Callable[[str], Api], data_dir: Path) -> None:
    rng = random.Random(20261130)
    api = make_user("dags")
    submitted = {}
    for _ in range(40):
        jobs = random_workflow(rng, data_dir)
        submitted[api.submit(jobs)["workflow_id"]] = jobs
    for workflow_id, jobs in submitted.items():
        check_invariants(jobs, api.wait(workflow_id, timeout_s=180))


def test_branches_run_in_parallel(make_user: Callable[[str], Api], data_dir: Path) -> None:
    api = make_user("parallel")
    jobs = [job(f"{b}", data_dir, b, duration_s=1.0) for b in ("b1", "b2", "b3")]
    workflow = api.wait(api.submit(jobs)["workflow_id"])
    spans = [(j["started_at"], j["finished_at"]) for j in workflow["jobs"]]
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans


def test_a_failure_skips_its_dependents_and_nothing_else(make_user: Callable[[str], Api], data_dir: Path) -> None:
    api = make_user("failure")
    jobs = [
        job("seg", data_dir, "b1", fail=True),
        job("after-seg", data_dir, "b1", ["seg"]),
        job("unrelated-same-branch", data_dir, "b1"),
        job("cross", data_dir, "b2", ["after-seg"]),
        job("unrelated-other-branch", data_dir, "b2"),
    ]
    workflow = api.wait(api.submit(jobs)["workflow_id"])
    status = {j["job_id"]: j["status"] for j in workflow["jobs"]}
    assert status == {
        "seg": "failed",
        "after-seg": "skipped",
        "unrelated-same-branch": "succeeded",
        "cross": "skipped",
        "unrelated-other-branch": "succeeded",
    }
    assert workflow["status"] == "failed"
    failed = next(j for j in workflow["jobs"] if j["job_id"] == "seg")
    assert "failed on purpose" in failed["error"]


def test_cancel_stops_running_and_never_starts_pending(make_user: Callable[[str], Api], data_dir: Path) -> None:
    api = make_user("cancel")
    signal = data_dir / f"never-{api.user}"
    jobs = [
        job("waits", data_dir, "b1", job_type="wait_signal", signal_path=str(signal)),
        job("next", data_dir, "b1"),
        job("other", data_dir, "b2", ["waits"]),
    ]
    workflow_id = api.submit(jobs)["workflow_id"]
    api.wait(workflow_id, lambda wf: wf["jobs"][0]["status"] == "running")
    response = api.request("POST", f"/api/workflows/{workflow_id}/cancel")
    assert response.status_code == 200, response.text
    workflow = api.wait(workflow_id, timeout_s=30)
    assert workflow["status"] == "cancelled"
    assert {j["job_id"]: j["status"] for j in workflow["jobs"]} == {
        "waits": "cancelled",
        "next": "cancelled",
        "other": "cancelled",
    }
    assert [j["started_at"] is None for j in workflow["jobs"]] == [False, True, True]
    again = api.request("POST", f"/api/workflows/{workflow_id}/cancel")
    assert again.status_code == 409 and again.json()["error"] == "conflict"


def test_every_state_change_is_a_numbered_event_in_the_progress_actor(
    make_user: Callable[[str], Api], data_dir: Path, service_settings: Settings
) -> None:
    api = make_user("events")
    jobs = [job("a", data_dir, "b1", steps=2), job("b", data_dir, "b1", fail=True), job("c", data_dir, "b2", ["b"])]
    workflow_id = api.submit(jobs)["workflow_id"]
    api.wait(workflow_id)
    progress = ray.get_actor(PROGRESS_NAME, namespace=service_settings.namespace)
    events = ray.get(progress.wait.remote(workflow_id, 0, 5.0))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    kinds = [(e.type.value, e.data.get("job_id"), e.data.get("status")) for e in events]
    assert kinds[0] == ("workflow.admitted", None, "running")
    assert kinds[-1] == ("workflow.finished", None, "failed")
    assert events[-1].data["summary"]["failed"] == 1 and events[-1].data["summary"]["skipped"] == 1
    states = [(job_id, status) for kind, job_id, status in kinds if kind == "job.state"]
    assert [s for s in states if s[0] == "a"] == [("a", "running"), ("a", "succeeded")]
    assert [s for s in states if s[0] == "b"] == [("b", "running"), ("b", "failed")]
    assert [s for s in states if s[0] == "c"] == [("c", "skipped")]
    progress_of_a = [
        (e.data["done"], e.data["total"])
        for e in events
        if e.data.get("job_id") == "a" and e.type.value == "job.progress"
    ]
    # Progress only moves forward; a report overtaken by the job's end is dropped (the end says 100 %).
    assert progress_of_a and progress_of_a == sorted(progress_of_a) and all(t == 2 for _, t in progress_of_a)
    # A long-poll past the last event waits and returns nothing new: the stream has ended.
    assert ray.get(progress.wait.remote(workflow_id, events[-1].seq, 0.2)) == []
