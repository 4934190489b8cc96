"""`WFSCHED_INGRESS=haproxy`: HAProxy answers on the service's port in front of replicas that serve
HTTP themselves; the API, streams, the WebSocket and request ids work as through Serve's proxy."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import psutil
import pytest
import websockets

from tests.support.service import Api, free_port, job_spec, running_service, service_env
from tests.support.streams import events_of, read_stream


def listener_of(port: int) -> str:
    """The name of the process that listens on `port` on this machine."""
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
            return psutil.Process(connection.pid).name()
    raise LookupError(f"nothing listens on port {port}")


@pytest.mark.slow
def test_haproxy_ingress_serves_the_api_streams_and_websocket(tmp_path: Path) -> None:
    port = free_port()
    env = {**service_env(tmp_path, port), "WFSCHED_INGRESS": "haproxy"}
    data_dir = tmp_path / "data"
    alice, mallory = (Api(f"http://127.0.0.1:{port}", user) for user in ("alice", "mallory"))
    with running_service(env, tmp_path / "serve.log"):
        assert listener_of(port) == "haproxy"
        chosen = alice.request("GET", "/api/workflows", headers={"X-Request-ID": "lab-a-0001"})
        assert chosen.status_code == 200 and chosen.headers["x-request-id"] == "lab-a-0001"
        replaced = alice.request("GET", "/api/workflows", headers={"X-Request-ID": "not a token"})
        assert replaced.headers["x-request-id"] not in ("", "not a token")

        workflow_id = alice.submit([job_spec("a", data_dir, steps=3, duration_s=0.6)])["workflow_id"]
        response, messages = read_stream(alice, f"/api/progress/{workflow_id}/stream")
        events = [m.json() for m in events_of(messages)]
        assert response.status_code == 200
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert events[-1]["type"] == "workflow.finished" and events[-1]["data"]["status"] == "succeeded"
        assert any(e["type"] == "job.progress" for e in events)
        assert mallory.request("GET", f"/api/progress/{workflow_id}/stream").status_code == 404

        token = alice.request("POST", "/api/stream-tokens").json()["token"]
        url = f"ws://127.0.0.1:{port}/api/progress/{workflow_id}/ws?token={token}"

        async def receive_all() -> list[dict[str, Any]]:
            async with websockets.connect(url) as socket:
                return [json.loads(message) async for message in socket]

        assert asyncio.run(receive_all()) == events
