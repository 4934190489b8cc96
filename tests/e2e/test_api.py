"""The HTTP API over real Serve: submit, read, paginate, validate, document."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.service import Api, job_spec


def test_submit_get_jobs_and_progress(make_user: Callable[[str], Api], data_dir: Path) -> None:
    alice = make_user("alice")
    jobs = [job_spec("job-1", data_dir, "branch-1", steps=4), job_spec("job-2", data_dir, "branch-1")]
    jobs[1]["depends_on"] = ["job-1"]
    created = alice.submit(jobs, name="Cell Segmentation Workflow")
    assert created["status"] == "running" and created["queue_position"] is None
    workflow = alice.wait(created["workflow_id"])
    assert workflow["status"] == "succeeded"
    assert workflow["name"] == "Cell Segmentation Workflow"
    assert workflow["branches"] == {"branch-1": ["job-1", "job-2"]}
    listed = alice.request("GET", f"/api/workflows/{created['workflow_id']}/jobs").json()
    assert [j["job_id"] for j in listed] == ["job-1", "job-2"]
    one = alice.request("GET", f"/api/workflows/{created['workflow_id']}/jobs/job-1").json()
    assert one["status"] == "succeeded" and one["progress_done"] == one["progress_total"] == 4
    assert one["started_at"] <= one["finished_at"] <= listed[1]["started_at"]
    progress = alice.request("GET", f"/api/progress/{created['workflow_id']}").json()
    assert progress["percent"] == 100.0
    assert [(j["job_id"], j["done"], j["total"]) for j in progress["jobs"]] == [("job-1", 4, 4), ("job-2", 1, 1)]


def test_list_is_newest_first_filtered_and_paginated(make_user: Callable[[str], Api], data_dir: Path) -> None:
    bob = make_user("bob")
    ids = [bob.submit([job_spec("a", data_dir)], name=f"w{i}")["workflow_id"] for i in range(5)]
    for workflow_id in ids:
        bob.wait(workflow_id)
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = bob.request("GET", "/api/workflows", params=params).json()
        seen += [w["workflow_id"] for w in page["workflows"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    succeeded = bob.request("GET", "/api/workflows", params={"status": "succeeded"}).json()
    assert len(succeeded["workflows"]) == 5
    assert bob.request("GET", "/api/workflows", params={"status": "failed"}).json()["workflows"] == []
    bad = bob.request("GET", "/api/workflows", params={"cursor": "nonsense"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"


def test_user_header_is_required_and_checked(make_user: Callable[[str], Api]) -> None:
    api = make_user("carol")
    missing = httpx.get(api.base_url + "/api/workflows")
    assert missing.status_code == 400
    assert missing.json() == {"error": "invalid_request", "detail": "the X-User-ID header is required"}
    for bad in ("", "x" * 129, "a b", "ünï".encode(), "a/b"):
        response = httpx.get(api.base_url + "/api/workflows", headers={"X-User-ID": bad})
        assert response.status_code == 400, bad
        assert "X-User-ID" in response.json()["detail"]


def test_submission_errors_name_the_job_and_reason(make_user: Callable[[str], Api], data_dir: Path) -> None:
    api = make_user("dave")
    image = str(data_dir / "s.svs")

    def submit(jobs: Any) -> dict[str, Any]:
        response = api.request("POST", "/api/workflows", json={"name": "bad", "jobs": jobs})
        assert response.status_code == 422, response.text
        body = response.json()
        assert set(body) >= {"error", "detail"} and body["detail"]
        return body  # type: ignore[no-any-return]

    assert "no jobs" in submit([])["detail"]
    j = lambda job_id, **kw: {"job_id": job_id, "job_type": "sleep", "image_path": image, **kw}  # noqa: E731
    assert "duplicate" in submit([j("a"), j("a")])["problems"][0]["reason"]
    assert submit([j("a", depends_on=["zzz"])])["problems"][0] == {
        "job_id": "a",
        "reason": "depends_on names unknown job 'zzz'",
    }
    assert "itself" in submit([j("a", depends_on=["a"])])["detail"]
    assert "dependency cycle" in submit([j("a", depends_on=["b"]), j("b", branch="x", depends_on=["a"])])["detail"]
    deadlock = [
        j("A", branch="b1", depends_on=["D"]),
        j("B", branch="b1"),
        j("C", branch="b2", depends_on=["B"]),
        j("D", branch="b2"),
    ]
    assert "deadlock" in submit(deadlock)["detail"]
    assert "unknown job_type 'nope'" in submit([j("a", job_type="nope")])["detail"]
    missing = submit([{"job_id": "a", "job_type": "sleep"}])
    assert missing["problems"][0]["job_id"] == "a" and "image_path" in missing["problems"][0]["reason"]
    assert "image_path is empty" in submit([j("a", image_path="")])["detail"]
    assert "outside the data roots" in submit([j("a", image_path="/etc/passwd")])["detail"]
    assert "duration_s" in submit([j("a", params={"duration_s": "long"})])["detail"]
    assert "more than the maximum of 1000" in submit([j(f"j{i}") for i in range(1001)])["detail"]
    huge = api.request(
        "POST",
        "/api/workflows",
        content=b'{"name": "' + b"x" * 2_000_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413 and huge.json()["error"] == "body_too_large"
    assert api.request("GET", "/api/workflows").json()["workflows"] == []


def test_docs_and_health(make_user: Callable[[str], Api]) -> None:
    base = make_user("eve").base_url
    assert httpx.get(base + "/healthz").json()["status"] == "ok"
    assert httpx.get(base + "/docs").status_code == 200
    assert httpx.get(base + "/redoc").status_code == 200
    spec = httpx.get(base + "/openapi.json").json()
    assert "/api/workflows" in spec["paths"] and "/api/progress/{workflow_id}" in spec["paths"]
