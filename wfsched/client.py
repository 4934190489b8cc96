"""A small HTTP client of the wfsched API, for the CLI and the demo."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

FINISHED = frozenset({"succeeded", "failed", "cancelled"})


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
    def __init__(self, base_url: str, user_id: str, timeout_s: float = 30.0) -> None:
        self._http = httpx.Client(base_url=base_url, headers={"X-User-ID": user_id}, timeout=timeout_s)

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

    def wait(self, workflow_id: str, poll_s: float = 0.5, timeout_s: float | None = None) -> dict[str, Any]:
        """Poll until the workflow has finished; return it."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            workflow = self.workflow(workflow_id)
            if workflow["status"] in FINISHED:
                return workflow
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"workflow {workflow_id} still {workflow['status']} after {timeout_s} s")
            time.sleep(poll_s)
