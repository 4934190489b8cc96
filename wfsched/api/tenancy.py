"""The tenant of a request: the `X-User-ID` header, required on every /api call."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header

from wfsched.exceptions import InvalidRequestError

USER_ID_PATTERN = re.compile(r"[A-Za-z0-9._@-]{1,128}")


def user_id(
    x_user_id: Annotated[str | None, Header(description="Who is asking: `[A-Za-z0-9._@-]{1,128}`.")] = None,
) -> str:
    if x_user_id is None:
        raise InvalidRequestError("the X-User-ID header is required")
    if not USER_ID_PATTERN.fullmatch(x_user_id):
        raise InvalidRequestError("X-User-ID must be 1 to 128 characters of A-Z a-z 0-9 . _ @ -")
    return x_user_id


UserId = Annotated[str, Depends(user_id)]
