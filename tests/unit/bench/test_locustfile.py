"""bench/locustfile.py's verdict: a failed request or a p95 over its bound makes Locust exit non-zero.

Each check runs in a child process: importing Locust monkey-patches the standard library with
gevent, which must not happen to this process (it imported Ray, and later tests use both).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# Logs requests into a fresh Environment's stats as the given lines say, prints the checks' outcomes.
VERDICT = """
import json, sys
sys.path.insert(0, "bench")
from locust.env import Environment
import locustfile

environment = Environment(user_classes=[locustfile.Tenant])
for method, name, time_ms, error in json.loads(sys.argv[1]):
    environment.stats.log_request(method, name, time_ms, 0)
    if error:
        environment.stats.log_error(method, name, error)
checks = locustfile.request_checks(environment, submit_bound_ms=1000, read_bound_ms=500)
print(json.dumps({check.name: check.passed for check in checks}))
"""


def verdict(requests: Sequence[tuple[str, str, float, str | None]]) -> dict[str, bool]:
    child = subprocess.run(
        [sys.executable, "-c", VERDICT, json.dumps(requests)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.splitlines()[-1])  # type: ignore[no-any-return]


FAST = [("POST", "/api/workflows", 80.0, None), ("GET", "/api/workflows/[id]", 30.0, None)] * 20


def test_fast_and_without_failures_passes() -> None:
    assert verdict(FAST) == {
        "failed requests, errors in users": True,
        "p95 GET /api/workflows/[id]": True,
        "p95 POST /api/workflows": True,
    }


def test_one_failed_request_fails() -> None:
    outcome = verdict([*FAST, ("POST", "/api/workflows/[id]/cancel", 20.0, "500: boom")])
    assert outcome["failed requests, errors in users"] is False
    assert "p95 POST /api/workflows/[id]/cancel" not in outcome  # cancels have no latency bound


def test_slow_submissions_or_reads_fail() -> None:
    slow = [("POST", "/api/workflows", 1500.0, None), ("GET", "/api/progress/[id]/stream", 900.0, None)] * 5
    outcome = verdict(FAST + slow)
    assert outcome["p95 POST /api/workflows"] is False
    assert outcome["p95 GET /api/progress/[id]/stream"] is False
    assert outcome["p95 GET /api/workflows/[id]"] is True


def test_locust_takes_the_thresholds_as_options() -> None:
    options = ["--p95-submit-ms", "900", "--p95-read-ms", "400", "--finish-wait-s", "60", "--image-path", "/d/s.svs"]
    child = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "bench/locustfile.py", *options, "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr  # an unknown option exits 2
    assert "Tenant" in child.stdout
