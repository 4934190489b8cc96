"""Load test: simulated tenants submit, poll, list, stream and cancel; Locust's exit code is the verdict.

`make load` runs it headless against a local service that `bench/load.py` starts and stops:

    python bench/load.py [Locust options: -u 100 -t 5m --p95-read-ms 300 ...]

Each simulated user is its own tenant (`X-User-ID`) and waits 1–3 s between tasks. Its tasks, by
weight: poll one of its newest workflows (the workflow, its progress snapshot) 4; list its
workflows (the first page, now and then filtered by status) 3; submit a small workflow of the test
`sleep` job type (three jobs on two branches, one dependency across them) 1; submit one and hold
its SSE stream until it finishes (at most `HOLD_S`; events in order, none missing) 1; submit one
and cancel it at once (a 409 for one that finished first is a right answer, not a failure) 1.

The verdict, when Locust quits (exit code 0 only if every line passes):

- no failed request and no error inside a user;
- p95 of submissions under `--p95-submit-ms`, p95 of every read (each GET, a stream by the time
  its headers came) under `--p95-read-ms`;
- every workflow answered 201 is listed by its owner (`GET /api/workflows`, every page) and
  finished, waiting at most `--finish-wait-s` after the users stop.

The bounds (reads 1 s, submissions 1.5 s) are what an interactive user still calls responsive, with
room above what this 2-core machine measured while other work ran on it (p95 0.45–0.9 s; README,
"Load test"): they catch a service that degrades, not a neighbour's ordinary load.
The submitted workflows are remembered in this process, so run it with one Locust process (the
default), not distributed.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests
from locust import HttpUser, between, events, task
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment

# 0.1–0.3 s jobs: a workflow takes about a second, so the 3 active-user slots keep up with 50
# users submitting and what is still queued at the end finishes well within the final wait.
JOB_S = (0.1, 0.3)
HOLD_S = 15.0  # longest a user holds one stream (a queued workflow may wait that long for a slot)
RECENT = 5  # a user polls among its newest workflows
# A request unanswered this long fails; without one, a hung service would show as fewer requests.
# A held stream reads a line at least every heartbeat (1 s in the bench service), so 10 s is a stall.
TIMEOUT_S = 10.0
LIST_LIMIT = 200  # the API's largest page
FINISHED = frozenset({"succeeded", "failed", "cancelled"})

# Owner -> ids of the workflows answered 201: what the final check looks for.
submitted: defaultdict[str, list[str]] = defaultdict(list)


def add_arguments(parser: LocustArgumentParser) -> None:
    group = parser.add_argument_group("wfsched load test")
    group.add_argument("--image-path", default="", help="a path inside the service's data roots (never read)")
    group.add_argument("--p95-submit-ms", type=float, default=1500.0, help="bound on p95 of POST /api/workflows")
    group.add_argument("--p95-read-ms", type=float, default=1000.0, help="bound on p95 of each read")
    group.add_argument("--finish-wait-s", type=float, default=120.0, help="how long the final check waits")


class Tenant(HttpUser):
    """One user of the service: its own X-User-ID, its own workflows."""

    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.user_id = f"load-{random.getrandbits(48):012x}"
        self.client.headers["X-User-ID"] = self.user_id
        self.mine: list[str] = []

    @task(1)
    def submit(self) -> None:
        self.submit_one()

    @task(1)
    def submit_and_follow(self) -> None:
        """As `wfsched submit --follow`: hold the new workflow's stream until it ends."""
        workflow_id = self.submit_one()
        if workflow_id is None:
            return
        path = f"/api/progress/{workflow_id}/stream"
        name = "/api/progress/[id]/stream"
        with self.client.get(path, name=name, stream=True, timeout=TIMEOUT_S, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            try:
                seqs = list(sse_ids(response.iter_lines(decode_unicode=True), time.monotonic() + HOLD_S))
            except requests.RequestException as error:
                response.failure(f"the stream broke: {error}")
                return
            if seqs != list(range(1, len(seqs) + 1)):
                response.failure(f"events out of order or missing: {seqs[:20]}")

    @task(1)
    def submit_and_cancel(self) -> None:
        """A change of mind: the new workflow is cancelled while it queues or runs."""
        workflow_id = self.submit_one()
        if workflow_id is None:
            return
        path = f"/api/workflows/{workflow_id}/cancel"
        name = "/api/workflows/[id]/cancel"
        with self.client.post(path, name=name, timeout=TIMEOUT_S, catch_response=True) as response:
            if response.status_code == 409:
                response.success()  # it finished first: a right answer

    @task(4)
    def poll(self) -> None:
        if self.mine:
            workflow_id = random.choice(self.mine[-RECENT:])
            self.client.get(f"/api/workflows/{workflow_id}", name="/api/workflows/[id]", timeout=TIMEOUT_S)
            self.client.get(f"/api/progress/{workflow_id}", name="/api/progress/[id]", timeout=TIMEOUT_S)

    @task(3)
    def list_mine(self) -> None:
        self.client.get("/api/workflows", params={"limit": 20}, name="/api/workflows?limit=20", timeout=TIMEOUT_S)
        if random.random() < 0.25:
            running = {"status": "running"}
            self.client.get("/api/workflows", params=running, name="/api/workflows?status=running", timeout=TIMEOUT_S)

    def submit_one(self) -> str | None:
        """Submit a small workflow; its id when answered 201 (then the final check looks for it)."""
        body = {"name": "load test", "jobs": small_workflow(self.environment.parsed_options.image_path)}
        with self.client.post("/api/workflows", json=body, timeout=TIMEOUT_S, catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return None
            workflow_id: str = response.json()["workflow_id"]
        self.mine.append(workflow_id)
        submitted[self.user_id].append(workflow_id)
        return workflow_id


def small_workflow(image_path: str) -> list[dict[str, Any]]:
    """Three `sleep` jobs on two branches; `c` follows `a` on b1 and waits for `b` on b2."""

    def job(job_id: str, branch: str, depends_on: list[str]) -> dict[str, Any]:
        params = {"duration_s": round(random.uniform(*JOB_S), 2), "steps": 3}
        spec = {"job_id": job_id, "job_type": "sleep", "image_path": image_path, "branch": branch}
        return {**spec, "depends_on": depends_on, "params": params}

    return [job("a", "b1", []), job("b", "b2", []), job("c", "b1", ["b"])]


def sse_ids(lines: Iterator[str], deadline: float) -> Iterator[int]:
    """The `id:` of each event until `workflow.finished` or the deadline (heartbeats keep lines coming)."""
    for line in lines:
        if line.startswith("id:"):
            yield int(line.removeprefix("id:"))
        elif line.startswith("event:") and line.removeprefix("event:").strip() == "workflow.finished":
            return
        if time.monotonic() > deadline:
            return


@dataclass(frozen=True)
class Check:
    name: str
    figure: str
    bound: str
    passed: bool

    def line(self) -> str:
        return f"  {self.name:<40} {self.figure:>24}  ({self.bound})  {'ok' if self.passed else 'FAILED'}"


report: list[str] = []  # judged when Locust quits, printed after its own summary


def judge(environment: Environment, **_: Any) -> None:
    """Locust's exit code: 0 if every threshold and the final check pass, else 1."""
    options = environment.parsed_options
    assert options is not None and environment.host, "run by the locust command, with --host"
    checks = request_checks(environment, options.p95_submit_ms, options.p95_read_ms)
    checks.append(final_check(environment.host, submitted, options.finish_wait_s))
    passed = all(check.passed for check in checks)
    report.extend(["wfsched load test thresholds:", *(check.line() for check in checks)])
    report.append(f"wfsched load test: {'PASSED' if passed else 'FAILED'}")
    environment.process_exit_code = 0 if passed else 1


def print_report(**_: Any) -> None:
    print("", *report, sep="\n", flush=True)


def request_checks(environment: Environment, submit_bound_ms: float, read_bound_ms: float) -> list[Check]:
    """No failed request or error in a user; p95 of submissions and of each read under its bound."""
    stats = environment.stats
    failures = stats.total.num_failures + (len(environment.runner.exceptions) if environment.runner else 0)
    checks = [
        Check("failed requests, errors in users", f"{failures} of {stats.total.num_requests}", "0", failures == 0)
    ]
    for entry in sorted(stats.entries.values(), key=lambda e: (e.method or "", e.name)):
        if (entry.method, entry.name) == ("POST", "/api/workflows"):
            bound_ms = submit_bound_ms
        elif entry.method == "GET":
            bound_ms = read_bound_ms
        else:
            continue  # cancels count among the failures only
        p95_ms = entry.get_response_time_percentile(0.95)
        name = f"p95 {entry.method} {entry.name}"
        checks.append(Check(name, f"{p95_ms:.0f} ms", f"< {bound_ms:.0f} ms", p95_ms < bound_ms))
    return checks


def final_check(base_url: str, owners: dict[str, list[str]], wait_s: float) -> Check:
    """Every workflow answered 201 is listed by its owner and finished, waiting at most `wait_s`."""
    name, bound = "201s listed by owner and finished", f"all, within {wait_s:.0f} s"
    expected = {(owner, workflow_id) for owner, ids in owners.items() for workflow_id in ids}
    started = time.monotonic()
    try:
        while True:
            listed = {(owner, w["workflow_id"]): w["status"] for owner in owners for w in listing(base_url, owner)}
            unfinished = [key for key in expected if listed.get(key) not in FINISHED]
            waited_s = time.monotonic() - started
            if not unfinished or waited_s > wait_s:
                break
            time.sleep(1.0)
    except requests.RequestException as error:
        return Check(name, f"{type(error).__name__}: {error}", bound, False)
    outcomes = Counter(listed.get(key, "not listed") for key in expected)
    figure = f"{len(expected) - len(unfinished)} of {len(expected)} after {waited_s:.0f} s"
    counts = ", ".join(f"{count} {status}" for status, count in sorted(outcomes.items()))
    return Check(name, figure, f"{bound}; {counts}", not unfinished)


def listing(base_url: str, owner: str) -> Iterator[dict[str, Any]]:
    """Every workflow the owner lists, page by page."""
    params: dict[str, Any] = {"limit": LIST_LIMIT}
    while True:
        headers = {"X-User-ID": owner}
        response = requests.get(f"{base_url}/api/workflows", params=params, headers=headers, timeout=TIMEOUT_S)
        response.raise_for_status()
        page = response.json()
        yield from page["workflows"]
        if not page["next_cursor"]:
            return
        params["cursor"] = page["next_cursor"]


events.init_command_line_parser.add_listener(add_arguments)
events.quitting.add_listener(judge)
events.quit.add_listener(print_report)
