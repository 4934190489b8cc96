"""A request-body size limit, enforced before the body is parsed."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLargeError(Exception):
    pass


class BodySizeLimit:
    """Refuse (422, as the API's validation errors) a body over the limit, declared or streamed.

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
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise BodyTooLargeError
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLargeError:
            await _refuse(send, max_bytes)


async def _refuse(send: Send, max_bytes: int) -> None:
    detail = f"the request body is over the limit of {max_bytes} bytes"
    body = json.dumps({"error": "body_too_large", "detail": detail}).encode()
    await send({"type": "http.response.start", "status": 422, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
