"""Nothing accepted is lost: a killed SchedulerActor, and a full stop and start of the service."""

from __future__ import annotations

import os
import signal as signals
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import ray

from tests.support.service import ROOT, TEST_JOB_MODULE, Api, free_port, job_spec, wait_healthy
from tests.support.streams import events_of, read_stream
from wfsched.config import Settings
from wfsched.control.actors import SCHEDULER_NAME


def job(
    job_id: str, data_dir: Path, record: Path, branch: str = "main", job_type: str = "sleep", **params: Any
) -> dict[str, Any]:
    """A job that records each start of it in `record`."""
    return job_spec(job_id, data_dir, branch, job_type=job_type, record_path=str(record), **params)


def runs(record: Path) -> list[str]:
    return [line.split()[1] for line in record.read_text().splitlines()]


def test_scheduler_killed_mid_run_loses_nothing(
    make_user: Callable[[str], Api], data_dir: Path, service_settings: Settings
) -> None:
    api = make_user("restart-a")
    record, release = data_dir / f"record-{api.user}", data_dir / f"release-{api.user}"
    jobs = [
        job("first", data_dir, record, "b1"),
        job("held", data_dir, record, "b1", "wait_signal", signal_path=str(release)),
        job("after", data_dir, record, "b1", duration_s=0.1),
        job("other", data_dir, record, "b2", duration_s=0.1),
    ]
    workflow_id = api.submit(jobs)["workflow_id"]
    api.wait(workflow_id, lambda wf: wf["jobs"][1]["status"] == "running")
    ray.kill(ray.get_actor(SCHEDULER_NAME, namespace=service_settings.namespace), no_restart=False)
    # A submission while the scheduler restarts waits for it and is accepted exactly once.
    during = api.submit([job("solo", data_dir, record)])
    release.write_text("go")
    workflow = api.wait(workflow_id)
    assert workflow["status"] == "succeeded"
    assert api.wait(during["workflow_id"])["status"] == "succeeded"
    assert sorted(runs(record)) == ["after", "first", "held", "other", "solo"]  # each ran once
    listed = api.request("GET", "/api/workflows").json()["workflows"]
    assert sorted(w["workflow_id"] for w in listed) == sorted([workflow_id, during["workflow_id"]])


@contextmanager
def running_service(settings_env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`wfsched serve` in a process of its own, with a Ray of its own; stopped with Ctrl-C."""
    env = {**os.environ, **settings_env, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "wfsched", "serve"], env=env, stdout=out, stderr=out)
    try:
        wait_healthy(f"http://127.0.0.1:{settings_env['WFSCHED_PORT']}", timeout_s=180)
        yield process
    finally:
        process.send_signal(signals.SIGINT)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_full_stop_and_start_on_the_same_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = free_port()
    env = {
        "WFSCHED_PORT": str(port),
        "WFSCHED_DB": str(tmp_path / "wfsched.db"),
        "WFSCHED_DATA_ROOTS": str(data_dir),
        "WFSCHED_RESULTS_DIR": str(tmp_path / "results"),
        "WFSCHED_JOB_MODULES": TEST_JOB_MODULE,
    }
    record, release = data_dir / "record", data_dir / "release"
    users = [Api(f"http://127.0.0.1:{port}", f"user{i}") for i in range(1, 5)]
    main_jobs = [
        job("done-before", data_dir, record, "b1"),
        job("interrupted", data_dir, record, "b1", "wait_signal", signal_path=str(release)),
        job("after", data_dir, record, "b1"),
    ]
    held = [job("held", data_dir, record, "main", "wait_signal", signal_path=str(release))]
    with running_service(env, tmp_path / "first.log"):
        main_id = users[0].submit(main_jobs)["workflow_id"]
        others = [u.submit(held)["workflow_id"] for u in users[1:]]
        users[0].wait(main_id, lambda wf: wf["jobs"][1]["status"] == "running")
        before = users[0].workflow(main_id)
        assert users[3].workflow(others[2])["queue_position"] == 1
        stream = f"/api/progress/{main_id}/stream"
        _, seen_before = read_stream(users[0], stream, stop_after=3)
    with running_service(env, tmp_path / "second.log"):
        after_restart = users[0].workflow(main_id)
        assert after_restart["jobs"][0] == before["jobs"][0]  # finished: not run again, times kept
        assert users[3].workflow(others[2])["status"] == "queued"  # the limit still holds
        release.write_text("go")
        assert users[0].wait(main_id, timeout_s=120)["status"] == "succeeded"
        for user, workflow_id in zip(users[1:], others, strict=True):
            assert user.wait(workflow_id, timeout_s=120)["status"] == "succeeded"
        # The stream resumes across the restart: nothing lost, nothing repeated.
        last_seen = events_of(seen_before)[-1].id
        _, seen_after = read_stream(users[0], stream, headers={"Last-Event-ID": str(last_seen)})
        _, whole = read_stream(users[0], stream)
        assert [m.id for m in events_of(seen_before) + events_of(seen_after)] == [m.id for m in events_of(whole)]
        assert events_of(whole)[-1].event == "workflow.finished"
    # Interrupted jobs ran again (users 2 and 3 held theirs too); the finished one did not.
    counts = {name: runs(record).count(name) for name in set(runs(record))}
    assert counts == {"done-before": 1, "interrupted": 2, "after": 1, "held": 5}
