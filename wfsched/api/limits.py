"""Limits on requests: the body size, enforced before parsing, and open streams per user and replica."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wfsched.exceptions import QuotaExceededError

# A refused stream's client may retry after this long: streams of the same user end or time out
# on their own (a finished workflow's stream ends; a heartbeat finds a dead client within ~15 s).
STREAM_RETRY_AFTER_S = 5.0


class BodySizeLimit:
    """Refuse (413 `body_too_large`) a body over the limit, whether declared or streamed in chunks.

    The body is read here, up to the limit, and handed on whole: an error raised from inside the
    app's own `receive` would be caught by the body parser and answered as a generic 400.
    `max_bytes` is asked on each request: the settings arrive after the app is built.
    """

    def __init__(self, app: ASGIApp, max_bytes: Callable[[], int]) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.max_bytes()
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await _refuse(send, max_bytes)
            return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nobody to answer
                return
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            if received > max_bytes:
                await _refuse(send, max_bytes)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: only a disconnect is left to hear
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _refuse(send: Send, max_bytes: int) -> None:
    detail = f"the request body is over the limit of {max_bytes} bytes"
    body = json.dumps({"error": "body_too_large", "detail": detail}).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


class StreamSlot:
    """One open stream, counted until released; released at most once, also if never used."""

    def __init__(self, slots: StreamSlots, user_id: str) -> None:
        self._slots: StreamSlots | None = slots
        self.user_id = user_id

    def release(self) -> None:
        slots, self._slots = self._slots, None
        if slots is not None:
            slots._release(self.user_id)

    def __del__(self) -> None:
        # A stream whose response never started (the client left first) never runs its finally.
        self.release()


class StreamSlots:
    """Open streams of one Api replica, per user and in all; a stream over either limit is refused.

    Taken before any other work for the stream, so a thousand attempts cost a thousand counter
    checks, not a thousand actor calls.
    """

    def __init__(self, per_user: int, per_replica: int) -> None:
        self.per_user = per_user
        self.per_replica = per_replica
        self._by_user: Counter[str] = Counter()
        self.open = 0

    def acquire(self, user_id: str) -> StreamSlot:
        if self._by_user[user_id] >= self.per_user:
            raise QuotaExceededError(
                f"you have {self._by_user[user_id]} streams open, the limit per user: close one first",
                retry_after_s=STREAM_RETRY_AFTER_S,
            )
        if self.open >= self.per_replica:
            raise QuotaExceededError(
                f"this service holds {self.open} streams, its limit: try again shortly",
                retry_after_s=STREAM_RETRY_AFTER_S,
            )
        self._by_user[user_id] += 1
        self.open += 1
        return StreamSlot(self, user_id)

    def _release(self, user_id: str) -> None:
        self.open -= 1
        self._by_user[user_id] -= 1
        if self._by_user[user_id] <= 0:
            del self._by_user[user_id]
