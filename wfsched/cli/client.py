"""A small HTTP client of the wfsched API, for the CLI and the demo."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from wfsched.models.state import FINISHED_WORKFLOW


class ApiError(RuntimeError):
    """The API answered with an error: its status, code and sentence."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        self.status_code = status_code
        self.code = str(body.get("error", "error"))
        self.detail = str(body.get("detail", body))
        super().__init__(f"{status_code} {self.code}: {self.detail}")


@dataclass
class SseMessage:
    """One Server-Sent Events message: its id, event type and JSON data (None for a comment)."""

    id: str | None
    event: str | None
    data: dict[str, Any] | None
    comment: str | None = None


def iter_sse(lines: Iterator[str]) -> Iterator[SseMessage]:
    """Parse the lines of a text/event-stream into messages; comments (heartbeats) come through too."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        if line == "":
            if data or fields:
                yield SseMessage(fields.get("id"), fields.get("event"), json.loads("\n".join(data)) if data else None)
            fields, data = {}, []
        elif line.startswith(":"):
            yield SseMessage(None, None, None, comment=line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            else:
                fields[name] = value


class Client:
    """One user's client: by `X-User-ID` (header mode), by API key, or both (they must agree)."""

    def __init__(self, base_url: str, user_id: str | None, timeout_s: float = 30.0, api_key: str | None = None) -> None:
        headers = {"X-User-ID": user_id} if user_id else {}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text}
            raise ApiError(response.status_code, body)
        return response.json()

    def submit(self, workflow: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/api/workflows", json=workflow)  # type: ignore[no-any-return]

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/workflows/{workflow_id}")  # type: ignore[no-any-return]

    def progress(self, workflow_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/progress/{workflow_id}")  # type: ignore[no-any-return]

    def list_workflows(self, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit, **({"status": status} if status else {})}
        return self.request("GET", "/api/workflows", params=params)["workflows"]  # type: ignore[no-any-return]

    def cancel(self, workflow_id: str) -> dict[str, Any]:
        return self.request("POST", f"/api/workflows/{workflow_id}/cancel")  # type: ignore[no-any-return]

    def download(self, workflow_id: str, job_id: str, name: str, dest: Path) -> Path:
        """Save one artifact under `dest` (a folder artifact arrives as `<name>.zip`)."""
        path = f"/api/workflows/{workflow_id}/jobs/{job_id}/artifacts/{name}"
        with self._http.stream("GET", path) as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError(response.status_code, response.json())
            zipped = response.headers.get("content-type", "").startswith("application/zip")
            target = dest / (f"{name}.zip" if zipped and not name.endswith(".zip") else name)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        return target

    def events(self, workflow_id: str | None = None, after: int = 0, retries: int = 5) -> Iterator[dict[str, Any]]:
        """Events as they happen: one workflow's until it finishes, or all of the user's, endlessly.

        A dropped connection is resumed from the last event seen (Last-Event-ID): none lost or repeated.
        """
        path = f"/api/progress/{workflow_id}/stream" if workflow_id else "/api/events"
        failures = 0
        while True:
            try:
                with self._http.stream("GET", path, headers={"Last-Event-ID": str(after)}, timeout=None) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise ApiError(response.status_code, response.json())
                    for message in iter_sse(response.iter_lines()):
                        if message.data is None:
                            continue
                        after = int(message.id or after)
                        failures = 0
                        yield message.data
                if workflow_id:
                    return  # the server ends a workflow's stream after its final event
            except httpx.TransportError:
                failures += 1
                if failures > retries:
                    raise
                time.sleep(min(2.0**failures, 10.0))

    def wait(self, workflow_id: str, poll_s: float = 0.5, timeout_s: float | None = None) -> dict[str, Any]:
        """Poll until the workflow has finished; return it."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            workflow = self.workflow(workflow_id)
            if workflow["status"] in FINISHED_WORKFLOW:
                return workflow
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"workflow {workflow_id} still {workflow['status']} after {timeout_s} s")
            time.sleep(poll_s)
