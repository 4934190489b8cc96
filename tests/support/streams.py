"""Reading SSE streams of the service in tests: events by httpx-sse, raw lines for what it hides."""

from __future__ import annotations

import httpx
from httpx_sse import ServerSentEvent, connect_sse

from tests.support.service import Api


def read_stream(
    api: Api, path: str, headers: dict[str, str] | None = None, stop_after: int | None = None, timeout_s: float = 60
) -> tuple[httpx.Response, list[ServerSentEvent]]:
    """Read an SSE stream to its end (or `stop_after` events); return the response and messages."""
    messages: list[ServerSentEvent] = []
    with (
        httpx.Client(timeout=timeout_s) as client,
        connect_sse(client, "GET", api.base_url + path, headers={"X-User-ID": api.user, **(headers or {})}) as source,
    ):
        if source.response.status_code != 200:
            source.response.read()
            return source.response, messages
        for message in source.iter_sse():
            messages.append(message)
            if stop_after is not None and len(events_of(messages)) >= stop_after:
                break
    return source.response, messages


def events_of(messages: list[ServerSentEvent]) -> list[ServerSentEvent]:
    """The messages that carry an event (not a `retry:` alone)."""
    return [m for m in messages if m.data]


def read_lines(api: Api, path: str, timeout_s: float = 60) -> list[str]:
    """The raw lines of an SSE stream to its end, comments included (httpx-sse skips them)."""
    with httpx.stream("GET", api.base_url + path, headers={"X-User-ID": api.user}, timeout=timeout_s) as response:
        assert response.status_code == 200, response.read()
        return list(response.iter_lines())


def is_comment(line: str) -> bool:
    """A heartbeat, whatever its text (`: keep-alive`, sse-starlette's `: ping - <time>`)."""
    return line.startswith(":")
