"""The CLI's client over a fake transport: typed answers, errors, and SSE that resumes where it broke."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from wfsched.cli import client as client_module
from wfsched.cli.client import ApiError, Client
from wfsched.models.event import Event, EventType

JOB = {
    "workflow_id": "w1",
    "job_id": "cells",
    "index": 0,
    "branch": "main",
    "job_type": "cell_segmentation",
    "image_path": "/s.svs",
    "status": "succeeded",
    "result": {"artifacts": ["cells.geojson"], "cell_count": 12},
}
WORKFLOW = {
    "workflow_id": "w1",
    "user_id": "lab-a",
    "name": "n",
    "status": "succeeded",
    "created_at": 1.0,
    "branches": {"main": ["cells"]},
    "jobs": [JOB],
}


def sse(seq: int, kind: str = "job.state") -> bytes:
    """One event as the service frames it, with CRLF line ends (sse-starlette's) and a heartbeat."""
    event = {"workflow_id": "w1", "seq": seq, "type": kind, "ts": 1.0, "data": {"job_id": "cells"}}
    return f": ping\r\n\r\nid: {seq}\r\nevent: {kind}\r\ndata: {json.dumps(event)}\r\n\r\n".encode()


def client_of(handler: Any) -> Client:
    return Client("http://wfsched", "lab-a", transport=httpx.MockTransport(handler))


def test_answers_are_the_api_models() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["X-User-ID"] == "lab-a"
        if request.url.path == "/api/workflows" and request.method == "GET":
            assert dict(request.url.params) == {"limit": "5", "status": "running"}
            return httpx.Response(200, json={"workflows": [WORKFLOW], "next_cursor": None})
        if request.method == "POST":
            return httpx.Response(201, json={"workflow_id": "w1", "status": "queued", "queue_position": 2})
        return httpx.Response(200, json=WORKFLOW)

    client = client_of(handler)
    workflow = client.workflow("w1")
    assert workflow.status.finished and workflow.jobs[0].result is not None
    assert workflow.jobs[0].result.artifacts == ["cells.geojson"]
    assert workflow.jobs[0].result.fields["cell_count"] == 12  # the job type's own field
    assert client.submit({"name": "n", "jobs": []}).queue_position == 2
    assert [w.workflow_id for w in client.list_workflows("running", 5).workflows] == ["w1"]  # type: ignore[arg-type]
    assert client.wait("w1").workflow_id == "w1"


def test_errors_are_one_api_error_with_the_code_and_sentence() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/stream"):
            return httpx.Response(404, json={"error": "not_found", "detail": "no workflow 'w9'"})
        return httpx.Response(502, text="<html>bad gateway</html>")

    client = client_of(handler)
    with pytest.raises(ApiError, match=r"^404 not_found: no workflow 'w9'$") as refused:
        list(client.events("w9"))
    assert refused.value.status_code == 404 and refused.value.code == "not_found"
    with pytest.raises(ApiError, match=r"^502 error: <html>bad gateway</html>$"):
        client.workflow("w9")


def test_a_dropped_stream_resumes_after_the_last_event_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    asked_after: list[str] = []
    monkeypatch.setattr(client_module.time, "sleep", lambda _s: None)

    def dropped_after_two() -> Iterator[bytes]:
        yield sse(1) + sse(2)
        raise httpx.ReadError("connection reset")

    def handler(request: httpx.Request) -> httpx.Response:
        asked_after.append(request.headers["Last-Event-ID"])
        headers = {"content-type": "text/event-stream"}
        if len(asked_after) == 1:
            return httpx.Response(200, headers=headers, content=dropped_after_two())
        return httpx.Response(200, headers=headers, content=sse(3) + sse(4, "workflow.finished"))

    events = list(client_of(handler).events("w1"))
    assert [e.seq for e in events] == [1, 2, 3, 4]  # none lost, none repeated
    assert all(isinstance(e, Event) for e in events) and events[-1].type == EventType.workflow_finished
    assert asked_after == ["0", "2"]  # the stream ended after its final event: no third request


def test_a_stream_that_keeps_failing_raises_after_the_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module.time, "sleep", lambda _s: None)
    attempts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        raise httpx.ConnectError("refused")

    with pytest.raises(httpx.ConnectError):
        list(client_of(handler).events(retries=2))
    assert len(attempts) == 3
