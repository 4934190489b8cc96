"""Reading SSE streams of the service in tests."""

from __future__ import annotations

import httpx

from tests.support.service import Api
from wfsched.cli.client import SseMessage, iter_sse


def read_stream(
    api: Api, path: str, headers: dict[str, str] | None = None, stop_after: int | None = None, timeout_s: float = 60
) -> tuple[httpx.Response, list[SseMessage]]:
    """Read an SSE stream to its end (or `stop_after` events); return the response and messages."""
    messages: list[SseMessage] = []
    with httpx.stream(
        "GET", api.base_url + path, headers={"X-User-ID": api.user, **(headers or {})}, timeout=timeout_s
    ) as response:
        if response.status_code != 200:
            response.read()
            return response, messages
        for message in iter_sse(response.iter_lines()):
            messages.append(message)
            if stop_after is not None and sum(m.data is not None for m in messages) >= stop_after:
                break
    return response, messages


def events_of(messages: list[SseMessage]) -> list[SseMessage]:
    return [m for m in messages if m.data is not None]
