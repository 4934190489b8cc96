"""The tenant of a request, by the configured `auth_mode` (see README, "Identity").

- `header` (the embedded default): `X-User-ID` is believed. For a trusted network only.
- `api_key`: `Authorization: Bearer <key>` names the user; an `X-User-ID` sent too must agree.
- `trusted_proxy`: `X-User-ID` counts only on a request whose peer is one of `trusted_proxies`.

In every mode a second `X-User-ID` or `Authorization` header is refused (400): the first and the
last of two headers are different answers to "who is this", depending on who reads them. Streams
also accept a signed stream token (`?token=`), for browsers' EventSource and WebSocket; a token is
issued only to a request that proved its user in the configured mode.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated

from fastapi import Depends, Header, Query
from starlette.datastructures import Address, Headers
from starlette.requests import HTTPConnection

from wfsched.api import tokens
from wfsched.api.routes.deps import service
from wfsched.config import AuthMode, Network, Settings
from wfsched.exceptions import ApiKeyError, ForbiddenError, InvalidRequestError, UnauthorizedError
from wfsched.store.paths import USER_ID_RULE, is_user_id

KeyLookup = Callable[[str], Awaitable[str | None]]
"""The user of an unrevoked API key, or None."""

UserHeader = Annotated[str | None, Header(description=f"Who is asking: {USER_ID_RULE}.")]
AuthorizationHeader = Annotated[
    str | None, Header(description="`Bearer <API key>` where the service runs with auth_mode api_key.")
]
TokenQuery = Annotated[str | None, Query(description="A stream token, where a header cannot be sent.")]


# The header parameters are read again from the connection (all values, not the first); they are
# declared so that /docs shows them.
async def user_id(
    connection: HTTPConnection, x_user_id: UserHeader = None, authorization: AuthorizationHeader = None
) -> str:
    return await identify(connection, service().settings, service().api_key_user)


async def stream_user_id(
    connection: HTTPConnection,
    x_user_id: UserHeader = None,
    authorization: AuthorizationHeader = None,
    token: TokenQuery = None,
) -> str:
    return await stream_identity(connection, token, service().settings, service().api_key_user)


async def stream_identity(connection: HTTPConnection, token: str | None, settings: Settings, lookup: KeyLookup) -> str:
    """A stream's user: by its stream token where it has one (any mode), else as `identify`."""
    if token is None:
        return await identify(connection, settings, lookup)
    claimed = one_header(connection.headers, "X-User-ID")
    one_header(connection.headers, "Authorization")
    user = tokens.verify(token, settings.stream_token_secret, settings.stream_token_ttl_s)
    if claimed is not None and claimed != user:
        raise ForbiddenError(f"X-User-ID {claimed!r} is not the user the stream token was issued to")
    return user


async def identify(connection: HTTPConnection, settings: Settings, lookup: KeyLookup) -> str:
    """Who sent this request, as the configured mode establishes it; else a WfschedError."""
    claimed = one_header(connection.headers, "X-User-ID")
    authorization = one_header(connection.headers, "Authorization")
    if settings.auth_mode == AuthMode.api_key:
        user = await lookup(bearer_key(authorization))
        if user is None:
            raise ApiKeyError("the API key is not valid: it is unknown or has been revoked")
        if claimed is not None and claimed != user:
            raise ForbiddenError(f"X-User-ID {claimed!r} is not the user of this API key; send no X-User-ID")
        return user
    if settings.auth_mode == AuthMode.trusted_proxy:
        if not came_through_proxy(connection.client, connection.headers, settings.trusted_proxies):
            raise ForbiddenError("requests must come through the trusted proxy, which says who is asking")
        if claimed is None:
            raise UnauthorizedError("the trusted proxy sent no X-User-ID header")
        return checked(claimed)
    if claimed is None:
        raise InvalidRequestError("the X-User-ID header is required")
    return checked(claimed)


def one_header(headers: Headers, name: str) -> str | None:
    """The header's one value, None if absent; two or more are refused."""
    values = headers.getlist(name)
    if len(values) > 1:
        raise InvalidRequestError(f"the request has {len(values)} {name} headers: send one")
    return values[0] if values else None


def bearer_key(authorization: str | None) -> str:
    """The key of `Authorization: Bearer <key>` (the scheme's case does not matter, RFC 7235)."""
    if authorization is None:
        raise ApiKeyError("an API key is required: send Authorization: Bearer <key>")
    scheme, _, key = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiKeyError("the Authorization header must be Bearer <key>")
    return key.strip()


def came_through_proxy(client: Address | None, headers: Headers, proxies: Iterable[Network]) -> bool:
    """True if the request's peer, as Serve records it, is one of the trusted proxies.

    Serve's HTTP proxy runs uvicorn and pickles the ASGI scope, `client` included, to the replica,
    so `client` is the TCP peer of Serve's proxy... except that uvicorn's ProxyHeadersMiddleware
    (on by default) replaces it with an address from X-Forwarded-For when the peer is one of
    FORWARDED_ALLOW_IPS (loopback by default). Then a local client could name the proxy's address
    in X-Forwarded-For and be taken for it. So a peer that X-Forwarded-For names does not count:
    a real proxy appends its client's address there, never its own.
    """
    peer = _address(client.host) if client else None
    if peer is None or not any(peer in network for network in proxies):
        return False
    return peer not in set(_forwarded_addresses(headers.getlist("X-Forwarded-For")))


def checked(candidate: str) -> str:
    if not is_user_id(candidate):
        raise InvalidRequestError(f"X-User-ID must be {USER_ID_RULE}")
    return candidate


def _forwarded_addresses(values: Iterable[str]) -> Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every address X-Forwarded-For names, written `host`, `host:port` or `[v6]:port` as uvicorn reads it."""
    for value in values:
        for entry in value.split(","):
            entry = entry.strip()
            if entry.startswith("["):
                entry = entry[1:].partition("]")[0]
            elif entry.count(":") == 1:
                entry = entry.partition(":")[0]
            address = _address(entry)
            if address is not None:
                yield address


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4 peer of a dual-stack socket shows as ::ffff:a.b.c.d; networks are written as IPv4.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


UserId = Annotated[str, Depends(user_id)]
StreamUserId = Annotated[str, Depends(stream_user_id)]
