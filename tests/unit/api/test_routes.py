"""The FastAPI app without Ray: routes, error mapping, body limit and identity over a fake service.

`FakeService` stands in for the Serve replica's `Service` (which forwards to the actors); what is
under test here is everything in front of it, driven over HTTP by httpx's ASGI transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from wfsched.api.app import create_app
from wfsched.api.routes import deps
from wfsched.config import Settings
from wfsched.exceptions import ConflictError, NotFoundError, QuotaExceededError
from wfsched.models.state import WorkflowRecord, WorkflowStatus
from wfsched.models.workflow import WorkflowSubmission


class FakeService:
    """Accepts workflows into a dict; refuses what a real scheduler would, as its errors."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workflows: dict[str, WorkflowRecord] = {}
        self.submitted: list[tuple[str, WorkflowSubmission, str | None]] = []

    async def submit(self, user: str, workflow: WorkflowSubmission, key: str | None) -> WorkflowRecord:
        if workflow.name == "too many":
            raise QuotaExceededError("over 120 submissions a minute", retry_after_s=7.2)
        self.submitted.append((user, workflow, key))
        record = WorkflowRecord(workflow_id=f"w{len(self.workflows)}", user_id=user, name=workflow.name, created_at=0)
        self.workflows[record.workflow_id] = record
        return record

    async def cancel(self, user: str, workflow_id: str) -> WorkflowRecord:
        record = self.workflows.get(workflow_id)
        if record is None or record.user_id != user:
            raise NotFoundError(f"no workflow {workflow_id!r}")
        if record.status.finished:
            raise ConflictError(f"workflow {workflow_id!r} is {record.status.value}")
        self.workflows[workflow_id] = record = record.model_copy(update={"status": WorkflowStatus.cancelled})
        return record

    async def api_key_user(self, key: str) -> str | None:
        return None

    async def ready(self) -> bool:
        return True

    open_streams = 0


@pytest.fixture
def fake() -> Iterator[FakeService]:
    service = FakeService(Settings(max_body_bytes=2_000))
    deps.install(service)  # type: ignore[arg-type]
    yield service
    deps.install(None)  # type: ignore[arg-type]


class Client:
    """Requests to the app in this process, one event loop per request."""

    def __init__(self) -> None:
        self.app = create_app()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://wfsched.test") as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(send())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@pytest.fixture
def client(fake: FakeService) -> Client:
    return Client()


def workflow(name: str = "w", **job: Any) -> dict[str, Any]:
    return {"name": name, "jobs": [{"job_id": "a", "job_type": "tissue_mask", "image_path": "s.svs", **job}]}


def test_a_submission_is_forwarded_with_its_user_and_key(client: Client, fake: FakeService) -> None:
    answer = client.post("/api/workflows", json=workflow(), headers={"X-User-ID": "alice", "Idempotency-Key": "k1"})
    assert answer.status_code == 201 and answer.json() == {
        "workflow_id": "w0",
        "status": "queued",
        "queue_position": None,
    }
    ((user, submitted, key),) = fake.submitted
    assert (user, submitted.jobs[0].job_id, key) == ("alice", "a", "k1")


def test_errors_map_to_their_status_and_one_body_shape(client: Client) -> None:
    alice = {"X-User-ID": "alice"}
    missing = client.post("/api/workflows/nope/cancel", headers=alice)
    assert missing.status_code == 404 and missing.json() == {"error": "not_found", "detail": "no workflow 'nope'"}
    client.post("/api/workflows", json=workflow(), headers=alice)
    assert client.post("/api/workflows/w0/cancel", headers=alice).status_code == 200
    again = client.post("/api/workflows/w0/cancel", headers=alice)
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    limited = client.post("/api/workflows", json=workflow("too many"), headers=alice)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "8"
    invalid = client.post("/api/workflows", json={"name": "w", "jobs": [{"job_id": "../x"}]}, headers=alice)
    assert invalid.status_code == 422 and set(invalid.json()) >= {"error", "detail"}
    broken = client.post("/api/workflows", content=b"{not json", headers={**alice, "Content-Type": "application/json"})
    assert broken.status_code == 422 and "JSON decode error" in broken.json()["detail"]


def test_identity_is_required_and_checked_before_the_route(client: Client, fake: FakeService) -> None:
    assert client.post("/api/workflows", json=workflow()).status_code == 400
    two = client.post("/api/workflows", json=workflow(), headers=[("X-User-ID", "a"), ("X-User-ID", "b")])
    assert two.status_code == 400 and "2 X-User-ID headers" in two.json()["detail"]
    assert client.post("/api/workflows", json=workflow(), headers={"X-User-ID": "../etc"}).status_code == 400
    assert fake.submitted == []


def test_a_body_over_the_limit_is_refused_before_it_is_parsed(client: Client, fake: FakeService) -> None:
    big = workflow(params={"pad": "x" * 3_000})
    refused = client.post("/api/workflows", json=big, headers={"X-User-ID": "alice"})
    assert refused.status_code == 413 and refused.json()["error"] == "body_too_large"
    assert fake.submitted == []


def test_health_answers_without_identity(client: Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "open_streams": 0}
