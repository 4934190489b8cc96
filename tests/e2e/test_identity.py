"""Identity over real Serve: each auth mode as its own Serve app in the session's Ray, spoofing refused.

The api_key and trusted_proxy apps share the session's settings but for the mode (same database,
same namespace, so the same named actors); they answer under their own route prefixes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from httpx_sse import EventSource
from ray import serve
from starlette.requests import Request

from tests.e2e.conftest import base_url
from tests.support.service import ROOT, job_spec, wait_healthy
from wfsched.api.ingress import build_app
from wfsched.config import AuthMode, Settings

PROXY_ADDRESS = "127.0.0.2"  # the "proxy": a second loopback address of this machine


def from_address(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


@pytest.fixture(scope="module")
def as_proxy() -> Iterator[httpx.Client]:
    with from_address(PROXY_ADDRESS) as client:
        yield client


@pytest.fixture(scope="module")
def direct() -> Iterator[httpx.Client]:
    with from_address("127.0.0.1") as client:
        yield client


def deployed(settings: Settings, name: str) -> Iterator[str]:
    """The app with these settings under /<name>, until the module ends."""
    serve.run(build_app(settings), name=f"wfsched-{name}", route_prefix=f"/{name}")
    url = f"{base_url(settings)}/{name}"
    wait_healthy(url)
    yield url
    serve.delete(f"wfsched-{name}")


@pytest.fixture(scope="module")
def apikey_url(service_settings: Settings) -> Iterator[str]:
    # A short cache, so the revocation test waits little; the default is 5 s.
    settings = service_settings.model_copy(update={"auth_mode": AuthMode.api_key, "api_key_cache_s": 1.0})
    yield from deployed(settings, "apikey")


@pytest.fixture(scope="module")
def proxied_url(service_settings: Settings) -> Iterator[str]:
    proxies = (ipaddress.ip_network(f"{PROXY_ADDRESS}/32"),)
    settings = service_settings.model_copy(update={"auth_mode": AuthMode.trusted_proxy, "trusted_proxies": proxies})
    yield from deployed(settings, "proxied")


def new_user(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def keys_command(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "wfsched", "keys", *args, "--db", str(db)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT, check=True)


def assert_refused(response: httpx.Response, status_code: int, code: str) -> dict[str, Any]:
    assert response.status_code == status_code, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == code and body["detail"], body
    return body


def finished_stream(client: httpx.Client, url: str, **kwargs: Any) -> list[str]:
    with client.stream("GET", url, **kwargs) as response:
        assert response.status_code == 200
        return [m.event for m in EventSource(response).iter_sse() if m.data]


def quick_workflow(data_dir: Path) -> dict[str, Any]:
    return {"name": "identity", "jobs": [job_spec("a", data_dir, steps=1)]}


# --- header mode, the embedded default ---------------------------------------------------------


def test_two_user_headers_are_refused_not_answered_as_the_first(service_settings: Settings) -> None:
    url = base_url(service_settings)
    two_users = [("X-User-ID", "alice"), ("X-User-ID", "bob")]
    with httpx.Client(timeout=30) as client:
        for path in ("/api/workflows", "/api/events"):
            body = assert_refused(client.get(url + path, headers=two_users), 400, "invalid_request")
            assert "X-User-ID" in body["detail"]
        two_keys = [("X-User-ID", "alice"), ("Authorization", "Bearer a"), ("Authorization", "Bearer b")]
        assert_refused(client.get(url + "/api/workflows", headers=two_keys), 400, "invalid_request")
        assert client.get(url + "/api/workflows", headers={"X-User-ID": "alice"}).status_code == 200


# --- api_key mode ------------------------------------------------------------------------------


def test_api_key_mode_end_to_end(apikey_url: str, service_settings: Settings, data_dir: Path) -> None:
    user, other = new_user("lab-a"), new_user("lab-b")
    key = keys_command(service_settings.db, "create", "--user", user).stdout.strip()
    bearer = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=30) as client:
        created = client.post(f"{apikey_url}/api/workflows", json=quick_workflow(data_dir), headers=bearer)
        assert created.status_code == 201, created.text
        workflow_id = created.json()["workflow_id"]
        listed = client.get(f"{apikey_url}/api/workflows", headers={**bearer, "X-User-ID": user}).json()
        assert [w["workflow_id"] for w in listed["workflows"]] == [workflow_id]
        # The key's user owns it: the header-mode app (same database) shows it to that user only.
        assert (
            client.get(
                f"{base_url(service_settings)}/api/workflows/{workflow_id}", headers={"X-User-ID": user}
            ).status_code
            == 200
        )

        # The spoof: naming another user, with or without a key, is no way in.
        for headers in ({"X-User-ID": user}, {"X-User-ID": other}, {}):
            response = client.get(f"{apikey_url}/api/workflows/{workflow_id}", headers=headers)
            assert_refused(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == "Bearer"
        mismatch = client.get(f"{apikey_url}/api/workflows", headers={**bearer, "X-User-ID": other})
        assert "not the user of this API key" in assert_refused(mismatch, 403, "forbidden")["detail"]
        guessed = {"Authorization": f"Bearer {key[:-4]}AAAA"}
        assert_refused(client.get(f"{apikey_url}/api/workflows", headers=guessed), 401, "unauthorized")
        two = [("Authorization", f"Bearer {key}"), ("Authorization", "Bearer x")]
        assert_refused(client.get(f"{apikey_url}/api/workflows", headers=two), 400, "invalid_request")

        # Streams: by key, and by a token that only a key gets.
        stream = f"{apikey_url}/api/progress/{workflow_id}/stream"
        assert finished_stream(client, stream, headers=bearer)[-1] == "workflow.finished"
        assert_refused(client.post(f"{apikey_url}/api/stream-tokens", headers={"X-User-ID": user}), 401, "unauthorized")
        token = client.post(f"{apikey_url}/api/stream-tokens", headers=bearer).json()["token"]
        assert finished_stream(client, f"{stream}?token={token}")[-1] == "workflow.finished"
        assert_refused(client.get(stream, headers={"X-User-ID": user}), 401, "unauthorized")
        with client.stream("GET", f"{apikey_url}/api/events?token={token}") as events:
            assert events.status_code == 200
    ws_url = apikey_url.replace("http://", "ws://") + f"/api/progress/{workflow_id}/ws"
    assert asyncio.run(_socket_events(f"{ws_url}?token={token}"))[-1]["type"] == "workflow.finished"
    assert asyncio.run(_socket_events(ws_url, bearer))[-1]["type"] == "workflow.finished"
    with pytest.raises(websockets.exceptions.WebSocketException):
        asyncio.run(_socket_events(ws_url, {"X-User-ID": user}))


def test_a_revoked_key_is_refused_within_the_cache_time(apikey_url: str, service_settings: Settings) -> None:
    user = new_user("lab-r")
    key = keys_command(service_settings.db, "create", "--user", user).stdout.strip()
    listing = keys_command(service_settings.db, "list").stdout
    key_id = next(line.split()[0] for line in listing.splitlines() if user in line)
    assert key not in listing
    bearer = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=30) as client:
        assert client.get(f"{apikey_url}/api/workflows", headers=bearer).status_code == 200
        keys_command(service_settings.db, "revoke", key_id)
        deadline = time.monotonic() + 1.0 + 5.0  # api_key_cache_s of the app, and a margin
        while client.get(f"{apikey_url}/api/workflows", headers=bearer).status_code == 200:
            assert time.monotonic() < deadline, "a revoked key still works"
            time.sleep(0.2)
        assert_refused(client.get(f"{apikey_url}/api/workflows", headers=bearer), 401, "unauthorized")


def test_the_cli_client_sends_the_api_key(apikey_url: str, service_settings: Settings) -> None:
    key = keys_command(service_settings.db, "create", "--user", new_user("lab-c")).stdout.strip()
    command = [sys.executable, "-m", "wfsched", "list", "--url", apikey_url]
    env = {"PATH": "/usr/bin:/bin", "WFSCHED_API_KEY": key}
    ok = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert ok.returncode == 0 and "no workflows" in ok.stdout, ok.stderr
    spoof = subprocess.run([*command, "--user", "lab-c"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert spoof.returncode == 2 and "401 unauthorized" in spoof.stderr


# --- trusted_proxy mode ------------------------------------------------------------------------


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Peer:
    """Answers with the client address that Serve hands a replica in the ASGI scope."""

    async def __call__(self, request: Request) -> str:
        return request.client.host if request.client else ""


def test_what_serve_hands_a_replica_as_the_client(
    as_proxy: httpx.Client, direct: httpx.Client, service_settings: Settings
) -> None:
    """What `came_through_proxy` relies on (see its comment); a Ray upgrade that changes it fails here."""
    serve.run(Peer.bind(), name="wfsched-peer", route_prefix="/peer")
    url = f"{base_url(service_settings)}/peer"
    try:
        assert as_proxy.get(url).text == PROXY_ADDRESS  # the TCP peer comes through
        assert direct.get(url).text == "127.0.0.1"
        # Not loopback, so not in uvicorn's FORWARDED_ALLOW_IPS: X-Forwarded-For changes nothing...
        assert as_proxy.get(url, headers={"X-Forwarded-For": "192.0.2.7"}).text == PROXY_ADDRESS
        # ...but from loopback it does: Serve's uvicorn takes the client from the header.
        assert direct.get(url, headers={"X-Forwarded-For": PROXY_ADDRESS}).text == PROXY_ADDRESS
    finally:
        serve.delete("wfsched-peer")


def test_trusted_proxy_mode_believes_only_the_proxy(
    proxied_url: str, as_proxy: httpx.Client, direct: httpx.Client, data_dir: Path
) -> None:
    user = new_user("lab-p")
    created = as_proxy.post(f"{proxied_url}/api/workflows", json=quick_workflow(data_dir), headers={"X-User-ID": user})
    assert created.status_code == 201, created.text
    workflow_id = created.json()["workflow_id"]
    mine = f"{proxied_url}/api/workflows/{workflow_id}"
    assert as_proxy.get(mine, headers={"X-User-ID": user}).status_code == 200

    # The spoof: a client that reaches the service past the proxy names the user itself.
    assert_refused(direct.get(mine, headers={"X-User-ID": user}), 403, "forbidden")
    spoofed_hop = {"X-User-ID": user, "X-Forwarded-For": PROXY_ADDRESS}
    assert_refused(direct.get(mine, headers=spoofed_hop), 403, "forbidden")
    assert_refused(as_proxy.get(mine), 401, "unauthorized")
    two = [("X-User-ID", user), ("X-User-ID", "someone-else")]
    assert_refused(as_proxy.get(mine, headers=two), 400, "invalid_request")

    # A token the proxy's user got works from anywhere, as a browser's EventSource would use it.
    token = as_proxy.post(f"{proxied_url}/api/stream-tokens", headers={"X-User-ID": user}).json()["token"]
    stream = f"{proxied_url}/api/progress/{workflow_id}/stream"
    assert finished_stream(direct, f"{stream}?token={token}")[-1] == "workflow.finished"
    assert_refused(direct.get(stream, headers={"X-User-ID": user}), 403, "forbidden")
    assert_refused(direct.post(f"{proxied_url}/api/stream-tokens", headers={"X-User-ID": user}), 403, "forbidden")


async def _socket_events(url: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    async with websockets.connect(url, additional_headers=headers) as socket:
        return [json.loads(message) async for message in socket]
