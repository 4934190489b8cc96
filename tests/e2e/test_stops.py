"""Clean stops of `wfsched serve`: SIGTERM takes the same stop path as Ctrl-C and loses nothing;
a second service on a port already held refuses to start instead of sharing it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_restart import job, runs
from tests.support.service import ROOT, Api, free_port, running_service, service_env

# `wfsched serve` from start to stop: "serving on", five lines of where things are, "stopping",
# and room for a warning or two (Serve's slow shutdown on a loaded machine).
QUIET_CONSOLE_LINES = 15


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_the_running_job_resumes_on_the_next_start(tmp_path: Path) -> None:
    port = free_port()
    env = service_env(tmp_path, port)
    data_dir = tmp_path / "data"
    record, release = data_dir / "record", data_dir / "release"
    api = Api(f"http://127.0.0.1:{port}", "lab")
    log = tmp_path / "first.log"
    with running_service(env, log) as process:
        workflow_id = api.submit([job("held", data_dir, record, "main", "wait_signal", signal_path=str(release))])[
            "workflow_id"
        ]
        api.wait(workflow_id, lambda wf: wf["jobs"][0]["status"] == "running")
        process.send_signal(signal.SIGTERM)
        exit_status = process.wait(timeout=120)
    output = log.read_text(errors="replace")
    assert "wfsched: stopping" in output, output[-3000:]
    assert exit_status == 0, output[-3000:]
    # A quiet console: where things are, no access lines (the health polls), no JSON log lines.
    assert "/docs" in output and "GET /healthz" not in output and '{"asctime"' not in output, output[-3000:]
    assert len(output.splitlines()) < QUIET_CONSOLE_LINES, output[-3000:]
    # Serve's own shutdown always reported its controller's end as a failed task here.
    assert "failed" not in output, output[-3000:]
    with running_service(env, tmp_path / "second.log"):
        release.write_text("go")
        assert api.wait(workflow_id, timeout_s=120)["status"] == "succeeded"
    assert runs(record) == ["held", "held"]  # interrupted by the stop, run again after the start


def test_serve_on_a_port_another_process_holds_exits_at_once_naming_the_port(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {**os.environ, **service_env(tmp_path, port), "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
        started_s = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "wfsched", "serve"], env=env, capture_output=True, text=True, timeout=120
        )
        took_s = time.monotonic() - started_s
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr, result.stderr
    assert "Started a local Ray instance" not in result.stdout + result.stderr  # nothing was started
    print(f"\nrefused in {took_s:.1f} s")
