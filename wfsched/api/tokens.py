"""Short-lived signed stream tokens: how a browser proves its user on EventSource and WebSocket.

A token is issued to a request that carries `X-User-ID` and names that user, signed with
HMAC-SHA256 and timestamped by itsdangerous; it is valid for `ttl_s` from its timestamp. It is no easier to forge than
the header: the header is what it takes to get one.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import itsdangerous

from wfsched.exceptions import UnauthorizedError

_SALT = "wfsched.stream-token"


def _serializer(secret: str, now: float | None) -> itsdangerous.URLSafeTimedSerializer:
    """The signer; `now` (tests) fixes the clock it stamps and checks tokens with."""
    signer: Any = itsdangerous.TimestampSigner
    if now is not None:
        at = int(now)

        class _SignerAt(itsdangerous.TimestampSigner):
            def get_timestamp(self) -> int:
                return at

        signer = _SignerAt
    return itsdangerous.URLSafeTimedSerializer(
        secret, salt=_SALT, signer=signer, signer_kwargs={"digest_method": hashlib.sha256}
    )


def issue(user_id: str, secret: str, ttl_s: float, now: float | None = None) -> tuple[str, float]:
    """A token for `user_id` and when it expires (its timestamp, whole seconds, plus `ttl_s`)."""
    issued = int(time.time() if now is None else now)
    token = _serializer(secret, issued).dumps(user_id)
    return token, round(issued + ttl_s, 3)


def verify(token: str, secret: str, ttl_s: float, now: float | None = None) -> str:
    """The user a valid, unexpired token was issued to; else UnauthorizedError."""
    if not token.isascii():  # never a token of ours; the library would fail to encode some
        raise UnauthorizedError("the stream token is not valid")
    try:
        # Whole seconds, as the timestamps are: a 60 s token is good until 60 s have passed.
        return str(_serializer(secret, now).loads(token, max_age=int(ttl_s)))
    except itsdangerous.SignatureExpired:
        raise UnauthorizedError("the stream token has expired: ask for a new one") from None
    except itsdangerous.BadData:
        raise UnauthorizedError("the stream token is not valid") from None
