"""Nothing accepted is lost: a killed SchedulerActor, and a full stop and start of the service;
on each engine (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.service import Api, Service, free_port, job_spec, running_service, service_env
from tests.support.streams import events_of, read_stream


def job(
    job_id: str, data_dir: Path, record: Path, branch: str = "main", job_type: str = "sleep", **params: Any
) -> dict[str, Any]:
    """A job that records each start of it in `record`."""
    return job_spec(job_id, data_dir, branch, job_type=job_type, record_path=str(record), **params)


def runs(record: Path) -> list[str]:
    return [line.split()[1] for line in record.read_text().splitlines()]


@pytest.mark.parametrize("service", ["sqlite", "postgresql"], indirect=True)
def test_scheduler_killed_mid_run_loses_nothing(
    make_user: Callable[[str], Api], data_dir: Path, service: Service
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
    service.kill_scheduler()
    # A submission while the scheduler restarts waits for it and is accepted exactly once.
    during = api.submit([job("solo", data_dir, record)])
    release.write_text("go")
    workflow = api.wait(workflow_id)
    assert workflow["status"] == "succeeded"
    assert api.wait(during["workflow_id"])["status"] == "succeeded"
    assert sorted(runs(record)) == ["after", "first", "held", "other", "solo"]  # each ran once
    listed = api.request("GET", "/api/workflows").json()["workflows"]
    assert sorted(w["workflow_id"] for w in listed) == sorted([workflow_id, during["workflow_id"]])


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_full_stop_and_start_on_the_same_database(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    db = request.getfixturevalue("postgres").new_database() if engine == "postgresql" else None
    port = free_port()
    env = service_env(tmp_path, port, db)
    data_dir = tmp_path / "data"
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
