"""A request id leads from a response through every process's JSON log lines to the workflow.

The id a client chooses (or Serve makes) is echoed on the response, kept on the workflow and in
its first event, and found as parseable JSON lines in Ray's session log folder: the API replica's,
the scheduler's, the lane's and a segmentation task's. An invalid id is replaced, not refused.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.service import Api, job_spec
from tests.support.slides import sample_crop
from tests.support.streams import events_of, read_stream
from wfsched.config import Settings
from wfsched.observe import logs

# Dense epidermis of cmu_small_region.svs: a few hundred nuclei, seconds on a CPU (as test_imaging).


def json_lines(logs_dir: Path, request_id: str) -> list[dict[str, Any]]:
    """Every JSON log line in the session's log folder whose `request_id` is this one."""
    found = []
    for path in logs_dir.rglob("*"):
        if not path.is_file() or path.suffix not in (".err", ".out", ".log"):
            continue
        for line in path.read_text(errors="replace").splitlines():
            if request_id in line and line.startswith("{"):
                record = json.loads(line)  # the test's point: it parses
                if record.get("request_id") == request_id:
                    found.append({**record, "file": str(path.relative_to(logs_dir))})
    return found


def wait_for_lines(
    logs_dir: Path, request_id: str, wanted: dict[str, Callable[[dict[str, Any]], bool]], timeout_s: float = 60
) -> dict[str, dict[str, Any]]:
    """The first line each of `wanted` accepts; fails naming those never found (lines land a little late)."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = json_lines(logs_dir, request_id)
        first = {name: next((line for line in lines if accepts(line)), None) for name, accepts in wanted.items()}
        if all(first.values()) or time.monotonic() > deadline:
            missing = [name for name, line in first.items() if line is None]
            assert not missing, f"no JSON line with request_id {request_id} from {missing}; found {lines}"
            return {name: line for name, line in first.items() if line is not None}
        time.sleep(0.5)


@pytest.fixture(scope="module")
def crop(service_settings: Settings) -> Path:
    return sample_crop(service_settings.data_roots[0] / "logs")


def test_a_chosen_request_id_leads_through_replica_scheduler_lane_and_segmentation_tasks(
    make_user: Callable[[str], Api], crop: Path
) -> None:
    api = make_user("logs")
    request_id = f"logs-test-{uuid.uuid4().hex[:12]}"
    cells = {
        "job_id": "cells",
        "job_type": "cell_segmentation",
        "image_path": str(crop),
        "branch": "main",
        "params": {"tile_size_px": 256, "halo_px": 64},
    }
    response = api.request(
        "POST", "/api/workflows", json={"name": "logs", "jobs": [cells]}, headers={"X-Request-ID": request_id}
    )
    assert response.status_code == 201, response.text
    assert response.headers.get_list("x-request-id") == [request_id]  # echoed, once
    workflow_id = response.json()["workflow_id"]
    workflow = api.wait(workflow_id, timeout_s=600)
    assert workflow["status"] == "succeeded", workflow
    assert workflow["request_id"] == request_id  # a user quoting the id finds the workflow, and back
    _, messages = read_stream(api, f"/api/progress/{workflow_id}/stream")
    first, *rest = (json.loads(m.data) for m in events_of(messages))
    assert first["seq"] == 1 and first["data"]["request_id"] == request_id
    assert all("request_id" not in event["data"] for event in rest)

    ours = {"tenant": api.user, "workflow_id": workflow_id}
    found = wait_for_lines(
        logs.session_logs_dir(),
        request_id,
        {
            "replica": lambda line: (
                line.get("actor_name", "").startswith("SERVE_REPLICA::") and line.get("name") == "wfsched.api.service"
            ),
            "serve's access line": lambda line: (
                line["file"].startswith("serve/replica_") and "POST /api/workflows 201" in line["message"]
            ),
            "scheduler": lambda line: line.get("actor_name") == "wfsched-scheduler",
            "lane": lambda line: (
                line.get("actor_name", "").startswith("wfsched-branch-") and line.get("job_id") == "cells"
            ),
            "segmentation task": lambda line: line.get("task_func_name", "").endswith(".segment_tiles"),
        },
    )
    for name in ("replica", "scheduler", "lane", "segmentation task"):
        assert {key: found[name].get(key) for key in ours} == ours, (name, found[name])
    task = found["segmentation task"]
    assert task["job_id"] == "cells" and task["ray_job_id"] != "cells"  # Ray's own job id kept apart
    assert task["task_name"] == f"segment_tiles {api.user}/{workflow_id[:8]}/cells"  # as the dashboard shows it
    assert "segmented" in task["message"]


@pytest.mark.parametrize("sent", ["two words", "x" * 200, "ünïcode", 'quote"d'])
def test_an_invalid_request_id_is_replaced_not_refused(
    make_user: Callable[[str], Api], data_dir: Path, sent: str
) -> None:
    api = make_user("bad-id")
    headers = {"X-Request-ID": sent.encode()}  # as bytes: httpx sends a str header as ASCII only
    response = api.request(
        "POST", "/api/workflows", json={"name": "n", "jobs": [job_spec("a", data_dir)]}, headers=headers
    )
    assert response.status_code == 201, response.text
    (echoed,) = response.headers.get_list("x-request-id")
    assert echoed != sent and logs.valid_request_id(echoed)
    assert api.wait(response.json()["workflow_id"])["request_id"] == echoed


def test_without_one_serve_makes_one_and_every_response_echoes_it(
    make_user: Callable[[str], Api], data_dir: Path
) -> None:
    api = make_user("no-id")
    created = api.request("POST", "/api/workflows", json={"name": "n", "jobs": [job_spec("a", data_dir)]})
    (made,) = created.headers.get_list("x-request-id")
    assert logs.valid_request_id(made)
    assert api.wait(created.json()["workflow_id"])["request_id"] == made
    for path in ("/api/workflows", "/healthz", "/api/workflows/nope"):  # errors too
        assert logs.valid_request_id(api.request("GET", path).headers["x-request-id"])
