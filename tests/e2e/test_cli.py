"""The `wfsched` client commands against the running service, as a user runs them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.cli import wfsched
from tests.support.service import Api


def workflow_file(tmp_path: Path, data_dir: Path, fail: bool = False) -> Path:
    jobs: list[dict[str, Any]] = [
        {
            "job_id": "first",
            "job_type": "sleep",
            "image_path": str(data_dir / "s.svs"),
            "branch": "b1",
            "params": {"steps": 4, "duration_s": 0.4},
        },
        {
            "job_id": "second",
            "job_type": "sleep",
            "image_path": str(data_dir / "s.svs"),
            "branch": "b2",
            "depends_on": ["first"],
            "params": {"fail": fail},
        },
    ]
    path = tmp_path / "workflow.json"
    path.write_text(json.dumps({"name": "cli", "jobs": jobs}))
    return path


def test_submit_follow_shows_bars_and_exit_codes(
    make_user: Callable[[str], Api], data_dir: Path, tmp_path: Path
) -> None:
    api = make_user("cli")
    ok = wfsched(api, "submit", str(workflow_file(tmp_path, data_dir)), "--follow")
    assert ok.returncode == 0, ok.stderr
    assert "workflow running" in ok.stdout and "workflow succeeded" in ok.stdout
    assert "first" in ok.stdout and "[" + "█" * 28 + "] 100.0% succeeded 4/4" in ok.stdout
    assert " 25.0% running" in ok.stdout  # live: an intermediate state was shown
    failed = wfsched(api, "submit", str(workflow_file(tmp_path, data_dir, fail=True)), "--follow")
    assert failed.returncode == 1
    assert "failed on purpose" in failed.stdout


def test_list_status_events_results_and_cancel(make_user: Callable[[str], Api], data_dir: Path, tmp_path: Path) -> None:
    api = make_user("cli2")
    created = wfsched(api, "submit", "-", stdin=workflow_file(tmp_path, data_dir).read_text())
    workflow_id = created.stdout.split()[1]
    api.wait(workflow_id)
    assert workflow_id in wfsched(api, "list").stdout
    status = wfsched(api, "status", workflow_id).stdout
    assert "succeeded" in status and "second" in status
    lines = wfsched(api, "events", workflow_id).stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "workflow.finished"
    results = wfsched(api, "results", workflow_id, "--dest", str(tmp_path / "out"))
    assert results.returncode == 0 and "0 artifacts" in results.stderr  # sleep jobs write none
    assert wfsched(api, "cancel", workflow_id).returncode == 2  # already finished: 409, said plainly
    missing = wfsched(api, "status", "nope")
    assert missing.returncode == 2 and "404 not_found" in missing.stderr
    assert wfsched(make_user("other"), "status", workflow_id).returncode == 2
