"""The tenant of a request: the `X-User-ID` header, required on every /api call.

Streams also accept a signed stream token (`?token=`), for browsers' EventSource and WebSocket.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query

from wfsched.api import tokens
from wfsched.api.routes.deps import service
from wfsched.exceptions import InvalidRequestError
from wfsched.paths import USER_ID_RULE, is_user_id

UserHeader = Annotated[str | None, Header(description=f"Who is asking: {USER_ID_RULE}.")]


def user_id(x_user_id: UserHeader = None) -> str:
    if x_user_id is None:
        raise InvalidRequestError("the X-User-ID header is required")
    return checked(x_user_id)


def stream_user_id(
    x_user_id: UserHeader = None,
    token: Annotated[str | None, Query(description="A stream token, where a header cannot be sent.")] = None,
) -> str:
    if x_user_id is not None:
        return checked(x_user_id)
    if token is None:
        raise InvalidRequestError("the X-User-ID header or a stream token (?token=) is required")
    return tokens.verify(token, service().settings.stream_token_secret)


def checked(candidate: str) -> str:
    if not is_user_id(candidate):
        raise InvalidRequestError(f"X-User-ID must be {USER_ID_RULE}")
    return candidate


UserId = Annotated[str, Depends(user_id)]
StreamUserId = Annotated[str, Depends(stream_user_id)]
