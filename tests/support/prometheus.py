"""A real Prometheus server for a test: Debian's /usr/bin/prometheus (scripts/install-prometheus.sh)
on a free local port, its data in a temporary folder, stopped by its PID when the test is done.

    with running_prometheus(config_text, [ALERTS], tmp_path) as prometheus:
        prometheus.query_until('sum(ray_wfsched_jobs_running)')
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.service import free_port

PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")
# An empty TSDB is ready in well under a second; a loaded 2-core machine may take several.
READY_TIMEOUT_S = 30.0


class PrometheusError(Exception):
    """Prometheus refused a request; the message is its own error text."""


@dataclass(frozen=True)
class PrometheusServer:
    url: str
    pid: int
    config_path: Path

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query: the result's samples (a scalar or string result as one sample)."""
        data = self._get("/api/v1/query", {"query": promql})
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_until(self, promql: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """Query again until the result is not empty (a scrape or a rule has to happen first)."""
        deadline = time.monotonic() + timeout_s
        while not (result := self.query(promql)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{promql!r} still returned nothing after {timeout_s:.0f} s")
            time.sleep(0.5)
        return result

    def series(self, match: str) -> list[dict[str, Any]]:
        """The label sets of the series a selector matches."""
        series: list[dict[str, Any]] = self._get("/api/v1/series", {"match[]": match})
        return series

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets, with their health and last error."""
        active: list[dict[str, Any]] = self._get("/api/v1/targets", {"state": "active"})["activeTargets"]
        return active

    def _get(self, path: str, params: dict[str, str]) -> Any:
        response = httpx.get(self.url + path, params=params, timeout=10.0)
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusError(f"{body.get('errorType', response.status_code)}: {body.get('error', response.text)}")
        return body["data"]


@contextlib.contextmanager
def running_prometheus(
    config_text: str, rules: Sequence[Path] = (), tmp: Path | None = None, port: int | None = None
) -> Iterator[PrometheusServer]:
    """Prometheus with this config (the rule files are copied beside it and added to its
    `rule_files`), listening on 127.0.0.1 (on `port`, else a free one), until the block ends.
    Without `tmp`, a temporary folder is made and removed."""
    if tmp is None:
        with (
            tempfile.TemporaryDirectory(prefix="prometheus-") as made,
            running_prometheus(config_text, rules, Path(made), port) as server,
        ):
            yield server
        return
    if not PROMETHEUS.exists():
        raise FileNotFoundError(f"{PROMETHEUS} is missing: run scripts/install-prometheus.sh (as root)")
    config_path = _write_config(config_text, rules, tmp)
    port = port or free_port()
    log_path = tmp / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                # A test's data lives minutes: no compaction worth waiting for, little to log.
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        server = PrometheusServer(f"http://127.0.0.1:{port}", process.pid, config_path)
        _wait_ready(server, process, log_path)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _write_config(config_text: str, rules: Sequence[Path], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load(config_text) or {}
    for rule_file in rules:
        shutil.copy(rule_file, folder / rule_file.name)
        rule_files = config.setdefault("rule_files", [])
        if rule_file.name not in rule_files:
            rule_files.append(rule_file.name)
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _wait_ready(server: PrometheusServer, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + "/-/ready", timeout=1.0).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"prometheus not ready after {READY_TIMEOUT_S:.0f} s: {log_path.read_text()[-2000:]}")
        time.sleep(0.1)
