"""wfsched services for tests: real Ray, real Serve over HTTP, a real database (SQLite or PostgreSQL).

The e2e session's shared service runs in the test process; `running_service` runs `wfsched serve`
in a process of its own, with a Ray of its own, as a user would.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from wfsched.api import server
from wfsched.config import DatabaseLocation, Settings

ROOT = Path(__file__).resolve().parents[2]
TEST_JOB_MODULE = "tests.support.job_types"


def job_spec(
    job_id: str,
    data_dir: Path,
    branch: str = "main",
    depends_on: list[str] | None = None,
    job_type: str = "sleep",
    **params: Any,
) -> dict[str, Any]:
    """One job of a submission, on a (never read) image path inside the test data root."""
    return {
        "job_id": job_id,
        "job_type": job_type,
        "image_path": str(data_dir / "s.svs"),
        "branch": branch,
        "depends_on": depends_on or [],
        "params": params,
    }


# Ray's workers take ports from 10002 to 19999, Serve's replicas behind HAProxy from 30000 up; the
# kernel hands out ephemeral ports from its ip_local_port_range (32768 up by default), for Ray's own
# connections among others.
LISTEN_PORTS = range(20000, 30000)


def free_port() -> int:
    """A port free now, outside the kernel's ephemeral range and Ray's worker ports.

    A port the kernel picked (bind to 0) may be handed out again as the local end of one of the
    connections Ray opens while it starts, and Serve's proxy then fails to bind to it."""
    for _ in range(200):
        port = random.choice(LISTEN_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {LISTEN_PORTS}")


def test_settings(base: Path, **overrides: Any) -> Settings:
    (base / "data").mkdir(parents=True, exist_ok=True)
    defaults: dict[str, Any] = {
        "port": free_port(),
        "db": base / "wfsched.db",
        "data_roots": (base / "data",),
        "results_dir": base / "results",
        "job_modules": (TEST_JOB_MODULE,),
        "reconcile_interval_s": 1.0,
        # GPU-shaped tasks on the logical GPU of ray_init_options; the code runs on the CPU.
        "num_gpus_per_task": 0.5,
        "heartbeat_s": 1.0,
    }
    return Settings.from_env(**{**defaults, **overrides})


@functools.cache
def metrics_port() -> int:
    """Where the test Ray's metrics agent serves Prometheus (tests/e2e/test_metrics.py scrapes it)."""
    return free_port()


def ray_init_options() -> dict[str, Any]:
    # Workers import the test job types from this checkout; logical GPUs let GPU-shaped tasks
    # schedule on a CPU-only machine (the code then runs on the CPU). Metrics reach the agent
    # every second (Ray's default is 10 s), so the metrics test waits seconds, not tens.
    return {
        "num_cpus": 2,
        "num_gpus": 1,
        "include_dashboard": False,
        "runtime_env": {"env_vars": {"PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}},
        "_metrics_export_port": metrics_port(),
        "_system_config": {"metrics_report_interval_ms": 1000},
    }


@dataclass
class Api:
    """A small HTTP client of the service for one user."""

    base_url: str
    user: str

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-User-ID": self.user, **kwargs.pop("headers", {})}
        return _http().request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)

    def submit(self, jobs: list[dict[str, Any]], name: str = "test workflow") -> dict[str, Any]:
        response = self.request("POST", "/api/workflows", json={"name": name, "jobs": jobs})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        response = self.request("GET", f"/api/workflows/{workflow_id}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def wait(
        self,
        workflow_id: str,
        until: Callable[[dict[str, Any]], bool] | None = None,
        timeout_s: float = 120,
        poll_s: float = 0.05,
    ) -> dict[str, Any]:
        """Poll until `until(workflow)` (default: finished); fail the test at the timeout."""
        until = until or (lambda wf: wf["status"] in ("succeeded", "failed", "cancelled"))
        deadline = time.monotonic() + timeout_s
        while True:
            workflow = self.workflow(workflow_id)
            if until(workflow):
                return workflow
            if time.monotonic() > deadline:
                raise AssertionError(f"workflow {workflow_id} did not get there in {timeout_s} s: {workflow}")
            time.sleep(poll_s)


@functools.cache
def _http() -> httpx.Client:
    """One pooled client for every test user: a new client per request costs an SSL context each."""
    return httpx.Client()


@contextlib.contextmanager
def bench_service(ray_options: dict[str, Any] | None = None, **overrides: Any) -> Iterator[tuple[Settings, str]]:
    """A whole service in a fresh folder for a benchmark: its settings and base URL; stopped after.

    `ray_options` replace those of `ray_init_options` (the logical CPUs and GPUs, say). Worker logs
    are not streamed: printing them would load the machine being measured. Metrics reach Ray's
    agent at Ray's own interval, as in production, not every second as in the tests.
    """
    folder = Path(tempfile.mkdtemp(prefix="wfsched-bench-"))
    settings = test_settings(folder, **overrides)
    options = {**ray_init_options(), "log_to_driver": False, **(ray_options or {})}
    options.pop("_system_config", None)
    base = f"http://{settings.host}:{settings.port}"
    try:
        server.start(settings, options)
        wait_healthy(base)
        yield settings, base
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def wait_healthy(base_url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(base_url + "/healthz", timeout=10).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base_url} did not become healthy in {timeout_s} s")


@dataclass(frozen=True)
class Service:
    """A running service as the e2e tests use it: where it answers, where its slides may be, and
    how to kill its SchedulerActor (Ray restarts it)."""

    base_url: str
    data_dir: Path
    kill_scheduler: Callable[[], None]


def service_env(base: Path, port: int, db: DatabaseLocation | None = None) -> dict[str, str]:
    """The `WFSCHED_*` variables of a `wfsched serve` for a test: its data root, results and (unless
    `db` says where) SQLite file in `base`, the test job types, this port."""
    (base / "data").mkdir(parents=True, exist_ok=True)
    return {
        "WFSCHED_PORT": str(port),
        "WFSCHED_DB": str(db or base / "wfsched.db"),
        "WFSCHED_DATA_ROOTS": str(base / "data"),
        "WFSCHED_RESULTS_DIR": str(base / "results"),
        "WFSCHED_JOB_MODULES": TEST_JOB_MODULE,
    }


@contextlib.contextmanager
def running_service(
    settings_env: dict[str, str], log: Path, options: Sequence[str] = ()
) -> Iterator[subprocess.Popen[bytes]]:
    """`wfsched serve [options]` in a process of its own, with a Ray of its own; stopped with Ctrl-C."""
    env = {**os.environ, **settings_env, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    with open(log, "ab") as out:
        command = [sys.executable, "-m", "wfsched", "serve", *options]
        process = subprocess.Popen(command, env=env, stdout=out, stderr=out)
    try:
        wait_healthy(f"http://127.0.0.1:{settings_env['WFSCHED_PORT']}", timeout_s=180)
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def kill_actor_process(root_pid: int, actor_class: str) -> None:
    """SIGKILL the worker process of the actor `actor_class` among `root_pid`'s descendants (a
    `wfsched serve` started its Ray, so its workers are there): a crash, which Ray answers with a
    restart. Ray titles an actor's process `ray::<class>` (`ray::<class>.<method>` during a call)."""
    title = f"ray::{actor_class}"
    for process in psutil.Process(root_pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            command = process.cmdline()
            if command and (command[0] == title or command[0].startswith(f"{title}.")):
                process.kill()
                return
    raise LookupError(f"no process titled {title} under process {root_pid}")
