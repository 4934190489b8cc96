"""A user sees, cancels and reads only their own workflows: every endpoint, two users, each engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.service import Api


@pytest.mark.parametrize("service", ["sqlite", "postgresql"], indirect=True)
def test_every_endpoint_answers_404_to_another_user(make_user: Callable[[str], Api], data_dir: Path) -> None:
    alice, mallory = make_user("alice"), make_user("mallory")
    signal = data_dir / f"isolation-{alice.user}"
    jobs = [
        {
            "job_id": "j1",
            "job_type": "wait_signal",
            "image_path": str(data_dir / "a.svs"),
            "params": {"signal_path": str(signal)},
        }
    ]
    workflow_id = alice.submit(jobs, name="alice's secret")["workflow_id"]
    alice.wait(workflow_id, lambda wf: wf["status"] == "running")
    missing = "0" * 32
    endpoints = [
        ("GET", f"/api/workflows/{workflow_id}"),
        ("GET", f"/api/workflows/{workflow_id}/jobs"),
        ("GET", f"/api/workflows/{workflow_id}/jobs/j1"),
        ("GET", f"/api/progress/{workflow_id}"),
        ("POST", f"/api/workflows/{workflow_id}/cancel"),
    ]
    for method, path in endpoints:
        theirs = mallory.request(method, path)
        nobodys = mallory.request(method, path.replace(workflow_id, missing))
        assert theirs.status_code == 404, (method, path, theirs.text)
        # Exactly as if it did not exist: same status, same error code, no owner's details.
        assert theirs.json()["error"] == nobodys.json()["error"] == "not_found"
        assert "alice" not in theirs.text and "secret" not in theirs.text
    assert mallory.request("GET", "/api/workflows").json() == {"workflows": [], "next_cursor": None}
    assert mallory.request("GET", "/api/workflows", params={"status": "running"}).json()["workflows"] == []
    # Mallory's cancel changed nothing; alice's own requests all work, her cancel last.
    assert alice.workflow(workflow_id)["status"] == "running"
    for method, path in endpoints:
        assert alice.request(method, path).status_code == 200, (method, path)
    assert alice.wait(workflow_id)["status"] == "cancelled"
    listed = alice.request("GET", "/api/workflows").json()["workflows"]
    assert [w["workflow_id"] for w in listed] == [workflow_id]
