"""A small typed HTTP client of the wfsched API, for the CLI and the demo: the API's own models back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
from httpx_sse import connect_sse
from pydantic import BaseModel

from wfsched.models.event import Event
from wfsched.models.state import ProgressSnapshot, WorkflowDetail, WorkflowPage, WorkflowRecord, WorkflowStatus
from wfsched.models.workflow import SubmitResponse

Model = TypeVar("Model", bound=BaseModel)


class ApiError(RuntimeError):
    """The API answered with an error: its status, code and sentence."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        self.status_code = status_code
        self.code = str(body.get("error", "error"))
        self.detail = str(body.get("detail", body))
        super().__init__(f"{status_code} {self.code}: {self.detail}")

    @classmethod
    def of(cls, response: httpx.Response) -> ApiError:
        """The error of a read response; a body that is not the API's JSON becomes the detail."""
        try:
            body = response.json()
        except ValueError:
            body = None
        return cls(response.status_code, body if isinstance(body, dict) else {"detail": response.text})


class Client:
    """One user's client: by `X-User-ID` (header mode), by API key, or both (they must agree)."""

    def __init__(
        self,
        base_url: str,
        user_id: str | None,
        timeout_s: float = 30.0,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"X-User-ID": user_id} if user_id else {}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._http.close()

    def _call(self, model: type[Model], method: str, path: str, **kwargs: Any) -> Model:
        response = self._http.request(method, path, **kwargs)
        if response.is_error:
            raise ApiError.of(response)
        return model.model_validate_json(response.content)

    def submit(self, workflow: dict[str, Any]) -> SubmitResponse:
        return self._call(SubmitResponse, "POST", "/api/workflows", json=workflow)

    def workflow(self, workflow_id: str) -> WorkflowDetail:
        return self._call(WorkflowDetail, "GET", f"/api/workflows/{workflow_id}")

    def progress(self, workflow_id: str) -> ProgressSnapshot:
        return self._call(ProgressSnapshot, "GET", f"/api/progress/{workflow_id}")

    def list_workflows(
        self, status: WorkflowStatus | None = None, limit: int = 50, cursor: str | None = None
    ) -> WorkflowPage:
        """One page of the user's workflows, newest first; pass its `next_cursor` for the next."""
        params: dict[str, Any] = {"limit": limit, "status": status, "cursor": cursor}
        return self._call(WorkflowPage, "GET", "/api/workflows", params={k: v for k, v in params.items() if v})

    def cancel(self, workflow_id: str) -> WorkflowRecord:
        return self._call(WorkflowRecord, "POST", f"/api/workflows/{workflow_id}/cancel")

    def download(self, workflow_id: str, job_id: str, name: str, dest: Path) -> Path:
        """Save one artifact under `dest` (a folder artifact arrives as `<name>.zip`)."""
        path = f"/api/workflows/{workflow_id}/jobs/{job_id}/artifacts/{name}"
        with self._http.stream("GET", path) as response:
            if response.is_error:
                response.read()
                raise ApiError.of(response)
            zipped = response.headers.get("content-type", "").startswith("application/zip")
            target = dest / (f"{name}.zip" if zipped and not name.endswith(".zip") else name)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        return target

    def events(self, workflow_id: str | None = None, after: int = 0, retries: int = 5) -> Iterator[Event]:
        """Events as they happen: one workflow's until it finishes, or all of the user's, endlessly.

        A dropped connection is resumed from the last event seen (Last-Event-ID): none lost or repeated.
        """
        path = f"/api/progress/{workflow_id}/stream" if workflow_id else "/api/events"
        failures = 0
        while True:
            try:
                headers = {"Last-Event-ID": str(after)}
                with connect_sse(self._http, "GET", path, headers=headers, timeout=None) as source:
                    if source.response.is_error:
                        source.response.read()
                        raise ApiError.of(source.response)
                    for message in source.iter_sse():
                        if not message.data:
                            continue  # a `retry:`-only message
                        event = Event.model_validate_json(message.data)
                        after, failures = int(message.id or after), 0
                        yield event
                if workflow_id:
                    return  # the server ends a workflow's stream after its final event
            except httpx.TransportError:
                failures += 1
                if failures > retries:
                    raise
                time.sleep(min(2.0**failures, 10.0))

    def wait(self, workflow_id: str, poll_s: float = 0.5, timeout_s: float | None = None) -> WorkflowDetail:
        """Poll until the workflow has finished; return it."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            workflow = self.workflow(workflow_id)
            if workflow.status.finished:
                return workflow
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"workflow {workflow_id} still {workflow.status} after {timeout_s} s")
            time.sleep(poll_s)
