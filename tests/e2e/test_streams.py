"""Live progress over real Serve: SSE with resume and heartbeats, WebSocket, tokens, no leaks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
import websockets
from httpx_sse import EventSource

from tests.support.service import Api, job_spec
from tests.support.streams import events_of, is_comment, read_lines, read_stream
from wfsched.config import Settings
from wfsched.control.actors import PROGRESS_NAME


def test_sse_stream_headers_order_heartbeat_and_end(make_user: Callable[[str], Api], data_dir: Path) -> None:
    api = make_user("sse")
    jobs = [job_spec("a", data_dir, steps=2, duration_s=3.0), job_spec("b", data_dir, "b2", fail=True)]
    workflow_id = api.submit(jobs)["workflow_id"]
    live = read_lines(api, f"/api/progress/{workflow_id}/stream")  # to the end, while the job sleeps 3 s
    end = next(i for i, line in enumerate(live) if line.startswith("event:") and line.endswith("workflow.finished"))
    assert any(is_comment(line) for line in live[:end])  # heartbeats while it ran; their text is the server's
    response, messages = read_stream(api, f"/api/progress/{workflow_id}/stream")  # the same, replayed
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-store"  # sse-starlette's: no proxy keeps a copy
    assert response.headers["x-accel-buffering"] == "no"
    events = events_of(messages)
    assert [int(m.id or 0) for m in events] == list(range(1, len(events) + 1))  # complete, in order
    assert all(m.event == m.json()["type"] for m in events)
    assert events[-1].event == "workflow.finished" and events[-1].json()["data"]["status"] == "failed"
    progress = [m.json()["data"] for m in events if m.event == "job.progress" and m.json()["data"]["job_id"] == "a"]
    # The final report may be overtaken by the job's end, which says 100 % itself.
    assert [(p["done"], p["total"]) for p in progress] in ([(1, 2), (2, 2)], [(1, 2)])
    assert progress[0]["rate_per_s"] > 0 and progress[0]["eta_s"] >= 0


def test_sse_resumes_from_last_event_id_without_loss_or_repeat(make_user: Callable[[str], Api], data_dir: Path) -> None:
    api = make_user("resume")
    workflow_id = api.submit([job_spec(f"j{i}", data_dir, steps=2, duration_s=0.2) for i in range(3)])["workflow_id"]
    _, first = read_stream(api, f"/api/progress/{workflow_id}/stream", stop_after=4)
    last_id = events_of(first)[-1].id
    _, rest = read_stream(api, f"/api/progress/{workflow_id}/stream", headers={"Last-Event-ID": str(last_id)})
    _, everything = read_stream(api, f"/api/progress/{workflow_id}/stream")
    resumed = [m.id for m in events_of(first) + events_of(rest)]
    assert resumed == [m.id for m in events_of(everything)]
    _, by_query = read_stream(api, f"/api/progress/{workflow_id}/stream?last_event_id={last_id}")
    assert [m.id for m in events_of(by_query)] == [m.id for m in events_of(rest)]
    # Resuming after the final event: the stream ends at once, empty.
    _, after_end = read_stream(
        api, f"/api/progress/{workflow_id}/stream", headers={"Last-Event-ID": str(events_of(everything)[-1].id)}
    )
    assert events_of(after_end) == []


def test_user_stream_carries_all_and_only_the_callers_workflows(
    make_user: Callable[[str], Api], data_dir: Path
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    ids = [alice.submit([job_spec("a", data_dir)])["workflow_id"] for _ in range(2)]
    bob.submit([job_spec("b", data_dir)])
    for workflow_id in ids:
        alice.wait(workflow_id)
    _, messages = read_stream(alice, "/api/events", stop_after=2 * 4)
    events = events_of(messages)
    assert {m.json()["workflow_id"] for m in events} == set(ids)
    global_ids = [int(m.id or 0) for m in events]
    assert global_ids == sorted(global_ids)
    _, resumed = read_stream(alice, "/api/events", headers={"Last-Event-ID": str(global_ids[3])}, stop_after=4)
    assert [int(m.id or 0) for m in events_of(resumed)] == global_ids[4:8]


def test_streams_are_the_owners_only_and_tokens_work(make_user: Callable[[str], Api], data_dir: Path) -> None:
    alice, mallory = make_user("alice"), make_user("mallory")
    workflow_id = alice.submit([job_spec("a", data_dir)])["workflow_id"]
    alice.wait(workflow_id)
    response, _ = read_stream(mallory, f"/api/progress/{workflow_id}/stream")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    token = alice.request("POST", "/api/stream-tokens").json()["token"]
    url = f"{alice.base_url}/api/progress/{workflow_id}/stream?token={token}"
    with httpx.stream("GET", url, timeout=30) as by_token:  # no header, as an EventSource sends it
        assert by_token.status_code == 200
        assert list(EventSource(by_token).iter_sse())[-1].event == "workflow.finished"
    mallorys_token = mallory.request("POST", "/api/stream-tokens").json()["token"]
    assert httpx.get(f"{alice.base_url}/api/progress/{workflow_id}/stream?token={mallorys_token}").status_code == 404
    bad = httpx.get(f"{alice.base_url}/api/progress/{workflow_id}/stream?token={token[:-2]}xx")
    assert bad.status_code == 401 and bad.json()["error"] == "unauthorized"
    assert httpx.get(f"{alice.base_url}/api/events").status_code == 400


def test_websocket_carries_the_same_events(make_user: Callable[[str], Api], data_dir: Path) -> None:
    alice, mallory = make_user("alice"), make_user("mallory")
    workflow_id = alice.submit([job_spec("a", data_dir, steps=2, duration_s=0.3)])["workflow_id"]
    token = alice.request("POST", "/api/stream-tokens").json()["token"]
    ws_url = alice.base_url.replace("http://", "ws://") + f"/api/progress/{workflow_id}/ws"

    async def receive_all(url: str) -> list[dict[str, Any]]:
        async with websockets.connect(url) as socket:
            return [json.loads(message) async for message in socket]

    received = asyncio.run(receive_all(f"{ws_url}?token={token}"))
    _, sse = read_stream(alice, f"/api/progress/{workflow_id}/stream")
    assert received == [m.json() for m in events_of(sse)]
    mallorys_token = mallory.request("POST", "/api/stream-tokens").json()["token"]
    with pytest.raises(websockets.exceptions.WebSocketException):
        asyncio.run(receive_all(f"{ws_url}?token={mallorys_token}"))


def test_two_hundred_open_close_cycles_leave_nothing_behind(
    make_user: Callable[[str], Api], data_dir: Path, service_settings: Settings
) -> None:
    api = make_user("churn")
    signal = data_dir / f"churn-{api.user}"
    workflow_id = api.submit(
        [
            {
                "job_id": "hold",
                "job_type": "wait_signal",
                "image_path": str(data_dir / "s.svs"),
                "params": {"signal_path": str(signal)},
            }
        ]
    )["workflow_id"]
    progress = ray.get_actor(PROGRESS_NAME, namespace=service_settings.namespace)
    before = ray.get(progress.stats.remote())

    async def open_and_close(client: httpx.AsyncClient, path: str) -> None:
        async with client.stream("GET", path, headers={"X-User-ID": api.user}) as response:
            assert response.status_code == 200
            async for _ in response.aiter_lines():
                break  # the first line arrives, then the client goes away

    async def churn() -> None:
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as client:
            for i in range(200):
                path = f"/api/progress/{workflow_id}/stream" if i % 2 else "/api/events"
                await open_and_close(client, path)

    asyncio.run(churn())
    deadline = time.monotonic() + 10
    while True:  # a cancelled long-poll is cleaned up a moment after the client left
        after = ray.get(progress.stats.remote())
        health = httpx.get(api.base_url + "/healthz").json()
        # Calls on their way count as tasks too (the replicas' feeds, other tests' publishes): a
        # leak stays above the bound, a call in flight is answered.
        settled = after["waiters"] == 0 and health["open_streams"] == 0 and after["tasks"] <= before["tasks"] + 2
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert after["waiters"] == 0 and health["open_streams"] == 0
    assert after["tasks"] <= before["tasks"] + 2
    assert after["rss_bytes"] - before["rss_bytes"] < 20 * 2**20
    signal.write_text("go")
    assert api.wait(workflow_id)["status"] == "succeeded"
