"""Live progress: Server-Sent Events, a WebSocket, and the stream tokens browsers need for them."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, WebSocket
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent

from wfsched.api.routes.deps import ServiceDep, service
from wfsched.api.tenancy import StreamUserId, UserId, stream_identity
from wfsched.exceptions import InvalidRequestError, WfschedError
from wfsched.models.event import Event

# WebSocket close codes of our own (4000–4999 are the application's): 4000 + the HTTP status.
WS_INVALID, WS_UNAUTHORIZED, WS_FORBIDDEN, WS_NOT_FOUND, WS_TOO_MANY = 4400, 4401, 4403, 4404, 4429
WS_CLOSE_CODES = {
    "not_found": WS_NOT_FOUND,
    "unauthorized": WS_UNAUTHORIZED,
    "forbidden": WS_FORBIDDEN,
    "quota_exceeded": WS_TOO_MANY,
}
# Event ids are SQLite integers (signed 64-bit); a larger one can only be a client's mistake.
MAX_EVENT_ID = 2**63 - 1

EVENT_ID = re.compile(r"[0-9]{1,19}")

# The last frames encoded, oldest first (`_frame`): seconds of events at the feed's full rate.
FRAMES_KEPT = 4096
_FRAMES: OrderedDict[tuple[int, bool], tuple[Event, bytes]] = OrderedDict()

tokens_router = APIRouter(tags=["progress"])
router = APIRouter(tags=["progress"])


class StreamToken(BaseModel):
    token: str
    expires_at: float


@tokens_router.post("/stream-tokens", response_model=StreamToken)
async def create_stream_token(user: UserId, service: ServiceDep) -> StreamToken:
    """A short-lived token for `?token=` on the streams, where a browser cannot send headers.

    It takes the identity the service's auth mode requires (X-User-ID, an API key, the proxy's header).
    """
    token, expires_at = service.stream_token(user)
    return StreamToken(token=token, expires_at=expires_at)


LastEventHeader = Annotated[str | None, Header(alias="Last-Event-ID", description="Resume after this id.")]
LastEventQuery = Annotated[str | None, Query(description="Resume after this id (for clients without headers).")]


@router.get("/progress/{workflow_id}/stream", response_class=EventSourceResponse)
async def workflow_stream(
    workflow_id: str,
    user: StreamUserId,
    service: ServiceDep,
    last_event_id_header: LastEventHeader = None,
    last_event_id: LastEventQuery = None,
) -> EventSourceResponse:
    """SSE of one workflow; `id:` is its sequence number; it ends after `workflow.finished`."""
    after = _cursor(last_event_id_header or last_event_id)
    events = await service.workflow_events(user, workflow_id, after)  # 404 and 429 are answers
    return _event_source(service.measured(events, "sse"), by_global_id=False, heartbeat_s=service.settings.heartbeat_s)


@router.get("/events", response_class=EventSourceResponse)
async def user_stream(
    user: StreamUserId,
    service: ServiceDep,
    last_event_id_header: LastEventHeader = None,
    last_event_id: LastEventQuery = None,
) -> EventSourceResponse:
    """SSE of all the caller's workflows; `id:` is the global event id."""
    events = service.user_events(user, _cursor(last_event_id_header or last_event_id))
    return _event_source(service.measured(events, "sse"), by_global_id=True, heartbeat_s=service.settings.heartbeat_s)


@router.websocket("/progress/{workflow_id}/ws")
async def workflow_socket(
    websocket: WebSocket, workflow_id: str, token: str | None = None, last_event_id: str | None = None
) -> None:
    """The workflow's events as JSON text messages; closes (1000) after `workflow.finished`."""
    try:
        user = await stream_identity(websocket, token, service().settings, service().api_key_user)
        after = _cursor(last_event_id)
        events = await service().workflow_events(user, workflow_id, after)
    except WfschedError as error:
        # Accepted first: a close before accept() reaches a browser as a bare HTTP 403, which
        # cannot tell "not found" from "token expired"; after it, the close code and reason can.
        await websocket.accept()
        await websocket.close(code=WS_CLOSE_CODES.get(error.code, WS_INVALID), reason=error.detail[:120])
        return
    await websocket.accept()
    await _pump(websocket, service().measured(events, "websocket"))


async def _pump(websocket: WebSocket, batches: AsyncIterator[list[Event]]) -> None:
    """Send events until the stream ends or the client goes away, whichever is first."""
    disconnected = asyncio.ensure_future(_until_disconnect(websocket))
    try:
        while True:
            following = asyncio.ensure_future(anext(batches))
            await asyncio.wait({following, disconnected}, return_when=asyncio.FIRST_COMPLETED)
            if disconnected.done():
                following.cancel()
                return
            try:
                batch = following.result()
            except StopAsyncIteration:
                break
            for event in batch:
                await websocket.send_text(event.model_dump_json())
        await websocket.close(code=1000)
    finally:
        disconnected.cancel()
        with contextlib.suppress(Exception):
            await batches.aclose()  # type: ignore[attr-defined]


async def _until_disconnect(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass  # the client may talk; nothing it says changes the stream


def _event_source(batches: AsyncIterator[list[Event]], by_global_id: bool, heartbeat_s: float) -> EventSourceResponse:
    """sse-starlette frames the events, sends a `: keep-alive` comment every `heartbeat_s` (so
    proxies keep an idle stream open and a dead client is found), and stops on disconnect."""
    return EventSourceResponse(
        _messages(batches, by_global_id),
        ping=heartbeat_s,
        ping_message_factory=lambda: ServerSentEvent(comment="keep-alive"),
    )


async def _messages(batches: AsyncIterator[list[Event]], by_global_id: bool) -> AsyncIterator[bytes]:
    """Each batch as one write: under load a stream catches up in a few writes, not one per event
    (each write costs a message from the replica through Serve's proxy)."""
    async for batch in batches:
        if batch:  # an empty batch marks an idle round; the pings cover it
            yield b"".join(_frame(event, by_global_id) for event in batch)


def _frame(event: Event, by_global_id: bool) -> bytes:
    """The event's SSE frame, encoded once in this replica: its feed hands the same `Event` to
    every stream that carries it (at 1,000 streams on 20 workflows, 50 of them: that was ~12 % of
    a replica's time). Kept by the object itself, which the cache holds meanwhile, so a key
    never names another event."""
    key = (id(event), by_global_id)
    cached = _FRAMES.get(key)
    if cached is not None and cached[0] is event:
        return cached[1]
    cursor = event.id if by_global_id else event.seq
    frame = ServerSentEvent(event.model_dump_json(), id=str(cursor), event=event.type.value).encode()
    _FRAMES[key] = (event, frame)
    if len(_FRAMES) > FRAMES_KEPT:
        _FRAMES.popitem(last=False)
    return frame


def _cursor(raw: str | None) -> int:
    """An event id from a client: ASCII digits (`str.isdigit` also takes '²') within SQLite's range."""
    if raw is None or raw == "":
        return 0
    if not EVENT_ID.fullmatch(raw) or int(raw) > MAX_EVENT_ID:
        raise InvalidRequestError(f"Last-Event-ID {raw[:40]!r} is not an event id (0 to {MAX_EVENT_ID})")
    return int(raw)
