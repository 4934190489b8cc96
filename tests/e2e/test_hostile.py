"""What a hostile tenant tried, each answered with a clear 4xx and nothing of anyone's lost.

Every case here was found against a fresh clone: a 500, a path outside the results folder, a
dropped stream, or one user holding what all users share.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support.service import Api, job_spec
from wfsched.config import Settings


def ws_url(api: Api, path: str) -> str:
    return api.base_url.replace("http://", "ws://") + path


def close_code(url: str, headers: dict[str, str] | None = None) -> tuple[int | None, str]:
    """Connect, read until the server closes; the close code and reason it gave."""

    async def run() -> tuple[int | None, str]:
        async with websockets.connect(url, additional_headers=headers) as socket:
            try:
                while True:
                    await socket.recv()
            except websockets.exceptions.ConnectionClosed as closed:
                return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "")

    return asyncio.run(run())


@pytest.mark.parametrize("user", ["..", ".", "...", ".hidden"])
def test_user_ids_that_could_name_a_folder_outside_are_refused(
    make_user: Callable[[str], Api], data_dir: Path, service_settings: Settings, user: str
) -> None:
    """`X-User-ID: ..` submitted a job that wrote to `<results>/../<workflow>/<job>/`."""
    api = Api(make_user("x").base_url, user)
    response = api.request("POST", "/api/workflows", json={"name": "n", "jobs": [job_spec("a", data_dir)]})
    assert response.status_code == 400 and "X-User-ID" in response.json()["detail"]
    assert api.request("GET", "/api/workflows").status_code == 400
    results = service_settings.results_dir
    assert not (results / "..").resolve().joinpath("n").exists()


@pytest.mark.parametrize(("field", "value"), [("job_id", "."), ("job_id", ".."), ("job_id", ".x"), ("branch", "..")])
def test_ids_that_could_name_a_folder_outside_are_refused(
    make_user: Callable[[str], Api], data_dir: Path, field: str, value: str
) -> None:
    """Job id `..` with user `.` made the results root a job's folder and deleted user `tiles`'s results."""
    api = make_user("ids")
    job = {**job_spec("a", data_dir), field: value}
    response = api.request("POST", "/api/workflows", json={"name": "n", "jobs": [job]})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_workflow" and field in response.json()["detail"]


def test_malformed_input_is_a_4xx_never_a_500(make_user: Callable[[str], Api], data_dir: Path) -> None:
    api = make_user("fuzz")
    workflow_id = api.submit([job_spec("a", data_dir)])["workflow_id"]
    api.wait(workflow_id)

    def post(body: bytes) -> httpx.Response:
        return api.request("POST", "/api/workflows", content=body, headers={"Content-Type": "application/json"})

    nul = post(json.dumps({"name": "n", "jobs": [{**job_spec("a", data_dir), "image_path": "/x\u0000.svs"}]}).encode())
    assert nul.status_code == 422 and "NUL" in nul.json()["detail"]
    infinite = post(
        b'{"name": "n", "jobs": [{"job_id": "a", "job_type": "tissue_mask", "image_path": "'
        + str(data_dir / "s.svs").encode()
        + b'", "params": {"min_object_area_um2": 1e400}}]}'
    )
    assert infinite.status_code == 422 and "finite" in infinite.json()["detail"]
    tiny = api.request(
        "POST",
        "/api/workflows",
        json={"name": "n", "jobs": [job_spec("a", data_dir, job_type="tissue_mask", pixel_size_um=0.001)]},
    )
    assert tiny.status_code == 422 and "0.05" in tiny.json()["detail"]
    artifact = api.request("GET", f"/api/workflows/{workflow_id}/jobs/a/artifacts/summary.json%00")
    assert artifact.status_code == 404 and artifact.json()["error"] == "not_found"
    for cursor in ("²", "99999999999999999999", "../x", workflow_id + "x"):
        listed = api.request("GET", "/api/workflows", params={"cursor": cursor})
        assert listed.status_code == 400 and "cursor" in listed.json()["detail"]
    for bad_id in ("²", str(2**66), "-1", "1.0"):
        for path in (f"/api/progress/{workflow_id}/stream", "/api/events"):
            by_query = api.request("GET", path, params={"last_event_id": bad_id})
            by_header = api.request("GET", path, headers={"Last-Event-ID": bad_id.encode()})
            assert by_query.status_code == by_header.status_code == 400, (path, bad_id, by_query.text)
        code, reason = close_code(
            ws_url(api, f"/api/progress/{workflow_id}/ws?last_event_id={bad_id}"), {"X-User-ID": api.user}
        )
        assert code == 4400 and "event id" in reason
    token = "é" + api.request("POST", "/api/stream-tokens").json()["token"]
    assert api.request("GET", "/api/events", params={"token": token}, headers={"X-User-ID": ""}).status_code in (
        400,
        401,
    )
    sse = httpx.get(f"{api.base_url}/api/progress/{workflow_id}/stream", params={"token": token})
    assert sse.status_code == 401 and sse.json()["error"] == "unauthorized"
    assert close_code(ws_url(api, f"/api/progress/{workflow_id}/ws?token=%C3%A9x.y"))[0] == 4401


def test_an_oversized_chunked_body_is_refused_as_too_large(make_user: Callable[[str], Api]) -> None:
    """A streamed body without Content-Length got 400 "There was an error parsing the body"."""
    api = make_user("big")

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(40):
            yield b"x" * 65_536
        yield b'", "jobs": []}'

    response = api.request("POST", "/api/workflows", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "body_too_large"


def test_a_refused_websocket_says_why_with_a_close_code(make_user: Callable[[str], Api], data_dir: Path) -> None:
    """Closed before accept(), a refusal reached browsers as a bare HTTP 403 for every reason."""
    alice, mallory = make_user("alice"), make_user("mallory")
    workflow_id = alice.submit([job_spec("a", data_dir)])["workflow_id"]
    code, reason = close_code(ws_url(alice, f"/api/progress/{workflow_id}/ws"), {"X-User-ID": mallory.user})
    assert code == 4404 and "no workflow" in reason
    assert close_code(ws_url(alice, f"/api/progress/{workflow_id}/ws?token=forged.token"))[0] == 4401
    alice.wait(workflow_id)


def test_stream_limits_keep_one_user_from_starving_the_rest(
    make_user: Callable[[str], Api], service_settings: Settings
) -> None:
    """1,000 open streams of one user made every other request and /healthz time out."""
    hog, other = make_user("hog"), make_user("other")
    limit = service_settings.max_streams_per_user
    latencies_s: list[float] = []

    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=hog.base_url, timeout=30) as client:
            opened: list[Any] = []
            statuses: list[int] = []
            try:
                for _ in range(limit + 30):  # 30 more attempts than the limit, all at once held open
                    stream = client.stream("GET", "/api/events", headers={"X-User-ID": hog.user})
                    response = await stream.__aenter__()
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        opened.append(stream)
                    else:
                        await response.aread()
                        assert response.json()["error"] == "quota_exceeded"
                        assert int(response.headers["Retry-After"]) >= 1
                        await stream.__aexit__(None, None, None)
                for _ in range(20):  # the other user is answered while the hog holds its streams
                    started = time.perf_counter()
                    listed = await client.get("/api/workflows", headers={"X-User-ID": other.user})
                    latencies_s.append(time.perf_counter() - started)
                    assert listed.status_code == 200
                    assert (await client.get("/healthz")).status_code == 200
                # Closing one stream frees its slot.
                await opened.pop().__aexit__(None, None, None)
                await asyncio.sleep(0.5)
                again = client.stream("GET", "/api/events", headers={"X-User-ID": hog.user})
                statuses.append((await again.__aenter__()).status_code)
                opened.append(again)
            finally:
                for stream in opened:
                    await stream.__aexit__(None, None, None)
            return statuses

    statuses = asyncio.run(run())
    assert statuses[:limit] == [200] * limit
    assert statuses[limit:-1] == [429] * 30
    assert statuses[-1] == 200
    latencies_s.sort()
    print(f"other user's list while the hog holds {limit} streams: p95 {1000 * latencies_s[-2]:.1f} ms")


def test_submissions_per_minute_answer_429_with_retry_after(
    make_user: Callable[[str], Api], data_dir: Path, service_settings: Settings
) -> None:
    api = make_user("burst")
    for _ in range(service_settings.max_submissions_per_minute):
        api.submit([job_spec("a", data_dir)])
    refused = api.request("POST", "/api/workflows", json={"name": "n", "jobs": [job_spec("a", data_dir)]})
    assert refused.status_code == 429 and refused.json()["error"] == "quota_exceeded"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert (
        make_user("calm")
        .request("POST", "/api/workflows", json={"name": "n", "jobs": [job_spec("a", data_dir)]})
        .status_code
        == 201
    )


def test_idempotency_key_returns_the_first_answer(make_user: Callable[[str], Api], data_dir: Path) -> None:
    api = make_user("retry")
    body = {"name": "n", "jobs": [job_spec("a", data_dir)]}
    key = {"Idempotency-Key": "7f8e-retry-1"}
    first = api.request("POST", "/api/workflows", json=body, headers=key)
    second = api.request("POST", "/api/workflows", json=body, headers=key)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    other = api.request("POST", "/api/workflows", json={**body, "name": "another"}, headers=key)
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    bad_key = api.request("POST", "/api/workflows", json=body, headers={"Idempotency-Key": "x" * 256})
    assert bad_key.status_code == 422 and "Idempotency-Key" in bad_key.text
    listed = api.request("GET", "/api/workflows").json()["workflows"]
    assert [w["workflow_id"] for w in listed] == [first.json()["workflow_id"]]


def _job(data_dir: Path, **changes: Any) -> dict[str, Any]:
    return {**job_spec("a", data_dir), **changes}


# (what was tried, method, path, headers, body as bytes or JSON, expected status, expected error code)
MORE_CASES: list[tuple[str, str, str, dict[str, str], Any, int, str]] = [
    ("JSON nested 100,000 deep", "POST", "/api/workflows", {}, b"[" * 100_000 + b"]" * 100_000, 400, "invalid_request"),
    ("a 5,000-digit number", "POST", "/api/workflows", {}, b'{"name": "n", "jobs": ' + b"9" * 5000 + b"}", 400, ""),
    ("bytes that are not UTF-8", "POST", "/api/workflows", {}, b'{"name": "\xff\xfe", "jobs": []}', 400, ""),
    ("a body that is not JSON", "POST", "/api/workflows", {}, b"hello", 422, "invalid_workflow"),
    ("NaN as the name", "POST", "/api/workflows", {}, b'{"name": NaN, "jobs": []}', 422, "invalid_workflow"),
    ("a name of 201 characters", "POST", "/api/workflows", {}, {"name": "x" * 201, "jobs": []}, 422, ""),
    ("limit=0", "GET", "/api/workflows?limit=0", {}, None, 422, "invalid_request"),
    ("limit=10000", "GET", "/api/workflows?limit=10000", {}, None, 422, "invalid_request"),
    ("status=bogus", "GET", "/api/workflows?status=bogus", {}, None, 422, "invalid_request"),
    ("a traversal as the workflow id", "GET", "/api/workflows/..%2F..%2Fetc", {}, None, 404, "not_found"),
    ("a traversal as the artifact", "GET", "/api/workflows/w/jobs/a/artifacts/..%2F..%2Fx", {}, None, 404, ""),
    ("an X-User-ID of 129 characters", "GET", "/api/workflows", {"X-User-ID": "u" * 129}, None, 400, ""),
    ("an empty X-User-ID", "GET", "/api/workflows", {"X-User-ID": ""}, None, 400, "invalid_request"),
    ("an X-User-ID with a slash", "GET", "/api/workflows", {"X-User-ID": "a/b"}, None, 400, "invalid_request"),
    ("an X-User-ID with a space", "GET", "/api/workflows", {"X-User-ID": "a b"}, None, 400, "invalid_request"),
    ("a method the API has not", "PUT", "/api/workflows", {}, None, 405, "method_not_allowed"),
    ("a path the API has not", "GET", "/api/nothing-here", {}, None, 404, "not_found"),
    (
        "a forged stream token",
        "GET",
        "/api/events?token=eyJ1IjoiYSJ9.AAAA",
        {"X-User-ID": ""},
        None,
        401,
        "unauthorized",
    ),
]


@pytest.mark.parametrize("case", MORE_CASES, ids=[c[0] for c in MORE_CASES])
def test_more_hostile_requests_get_a_clear_4xx(
    make_user: Callable[[str], Api], case: tuple[str, str, str, dict[str, str], Any, int, str]
) -> None:
    _, method, path, headers, body, status, code = case
    api = make_user("more")
    kwargs: dict[str, Any] = {"headers": {"Content-Type": "application/json", **headers}}
    if isinstance(body, bytes):
        kwargs["content"] = body
    elif body is not None:
        kwargs["json"] = body
    response = api.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["detail"]
    if code:
        assert response.json()["error"] == code


def test_bad_workflows_name_the_bad_job(make_user: Callable[[str], Api], data_dir: Path) -> None:
    api = make_user("dag")
    cases = {
        "duplicate job ids": [_job(data_dir), _job(data_dir)],
        "a job that depends on itself": [_job(data_dir, depends_on=["a"])],
        "an unknown job type": [_job(data_dir, job_type="rm -rf /")],
        "an unknown param": [_job(data_dir, params={"__proto__": 1})],
        "a relative image path": [_job(data_dir, image_path="s.svs")],
        "a path outside the data roots": [_job(data_dir, image_path="/etc/passwd")],
        "a dot-dot path out of the data root": [_job(data_dir, image_path=f"{data_dir}/../../etc/passwd")],
    }
    for what, jobs in cases.items():
        response = api.request("POST", "/api/workflows", json={"name": "n", "jobs": jobs})
        assert response.status_code == 422, (what, response.text)
        assert response.json()["problems"] or response.json()["detail"], what
    assert api.request("GET", "/api/workflows").json()["workflows"] == []


def test_cancel_twice_and_cancel_anothers(make_user: Callable[[str], Api], data_dir: Path) -> None:
    alice, mallory = make_user("alice"), make_user("mallory")
    workflow_id = alice.submit([job_spec("a", data_dir)])["workflow_id"]
    alice.wait(workflow_id)
    assert alice.request("POST", f"/api/workflows/{workflow_id}/cancel").status_code == 409
    assert mallory.request("POST", f"/api/workflows/{workflow_id}/cancel").status_code == 404
    assert alice.workflow(workflow_id)["status"] == "succeeded"
