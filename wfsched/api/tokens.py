"""Short-lived signed stream tokens: how a browser proves its user on EventSource and WebSocket.

A token is issued to a request that carries `X-User-ID` and names that user and an expiry, signed
with HMAC-SHA256. It is no easier to forge than the header: the header is what it takes to get one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from wfsched.exceptions import UnauthorizedError


def issue(user_id: str, secret: str, ttl_s: float, now: float | None = None) -> tuple[str, float]:
    expires_at = round((time.time() if now is None else now) + ttl_s, 3)
    payload = _b64(json.dumps({"u": user_id, "e": expires_at}, separators=(",", ":")).encode())
    return f"{payload}.{_sign(payload, secret)}", expires_at


def verify(token: str, secret: str, now: float | None = None) -> str:
    """The user a valid, unexpired token was issued to; else UnauthorizedError."""
    payload, _, signature = token.partition(".")
    if not (signature and token.isascii() and hmac.compare_digest(signature, _sign(payload, secret))):
        # isascii first: compare_digest raises on non-ASCII text, which answered 500 before.
        raise UnauthorizedError("the stream token is not valid")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if float(claims["e"]) < (time.time() if now is None else now):
        raise UnauthorizedError("the stream token has expired: ask for a new one")
    return str(claims["u"])


def _sign(payload: str, secret: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
