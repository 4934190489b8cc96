"""Who a request is, in each auth mode: driven with real Starlette connections and a real key store."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest
from starlette.requests import Request

from wfsched.api import tokens
from wfsched.api.ingress import refuse_trusted_proxy_behind_haproxy
from wfsched.api.tenancy import KeyLookup, identify, stream_identity
from wfsched.config import AuthMode, Settings
from wfsched.exceptions import ApiKeyError, ForbiddenError, InvalidRequestError, SettingsError, UnauthorizedError
from wfsched.store.keys import ApiKeyStore, hash_key

PROXY = "10.0.0.5"


def connection(*headers: tuple[str, str], client: str = "127.0.0.1") -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw, "client": (client, 50000)})


@pytest.fixture
def keys(tmp_path: Path) -> ApiKeyStore:
    return ApiKeyStore(tmp_path / "wfsched.db")


@pytest.fixture
def lookup(keys: ApiKeyStore) -> KeyLookup:
    async def user_of(key: str) -> str | None:
        return keys.user_of(hash_key(key))

    return user_of


def who(request: Request, settings: Settings, lookup: KeyLookup) -> str:
    return asyncio.run(identify(request, settings, lookup))


HEADER = Settings()
API_KEY = HEADER.model_copy(update={"auth_mode": AuthMode.api_key})
PROXIED = HEADER.model_copy(
    update={"auth_mode": AuthMode.trusted_proxy, "trusted_proxies": (ipaddress.ip_network("10.0.0.0/29"),)}
)


@pytest.mark.parametrize("settings", [HEADER, API_KEY, PROXIED], ids=lambda s: s.auth_mode.value)
def test_two_identity_headers_are_refused_in_every_mode(settings: Settings, lookup: KeyLookup) -> None:
    with pytest.raises(InvalidRequestError, match="2 X-User-ID headers"):
        who(connection(("X-User-ID", "alice"), ("X-User-ID", "bob"), client=PROXY), settings, lookup)
    with pytest.raises(InvalidRequestError, match="2 Authorization headers"):
        who(connection(("Authorization", "Bearer a"), ("authorization", "Bearer b"), client=PROXY), settings, lookup)


def test_header_mode_believes_the_one_header(lookup: KeyLookup) -> None:
    assert who(connection(("X-User-ID", "alice")), HEADER, lookup) == "alice"
    assert who(connection(("X-User-ID", "alice"), ("Authorization", "Bearer x")), HEADER, lookup) == "alice"
    for bad in [connection(), connection(("X-User-ID", "alice, bob")), connection(("X-User-ID", ".."))]:
        with pytest.raises(InvalidRequestError):
            who(bad, HEADER, lookup)


def test_api_key_mode_takes_the_user_from_the_key(keys: ApiKeyStore, lookup: KeyLookup) -> None:
    record, key = keys.create("lab-a")
    assert who(connection(("Authorization", f"Bearer {key}")), API_KEY, lookup) == "lab-a"
    assert who(connection(("Authorization", f"bearer  {key} ")), API_KEY, lookup) == "lab-a"
    assert who(connection(("Authorization", f"Bearer {key}"), ("X-User-ID", "lab-a")), API_KEY, lookup) == "lab-a"
    with pytest.raises(ForbiddenError, match="not the user of this API key"):
        who(connection(("Authorization", f"Bearer {key}"), ("X-User-ID", "lab-b")), API_KEY, lookup)
    keys.revoke(record.key_id)
    with pytest.raises(ApiKeyError, match="revoked"):
        who(connection(("Authorization", f"Bearer {key}")), API_KEY, lookup)


@pytest.mark.parametrize(
    "headers",
    [(), (("X-User-ID", "lab-a"),), (("Authorization", "Bearer "),), (("Authorization", "Basic bGFiLWE6eA=="),)],
)
def test_api_key_mode_refuses_requests_without_a_valid_key(
    headers: tuple[tuple[str, str], ...], keys: ApiKeyStore, lookup: KeyLookup
) -> None:
    keys.create("lab-a")
    with pytest.raises(ApiKeyError):
        who(connection(*headers), API_KEY, lookup)
    with pytest.raises(ApiKeyError, match="not valid"):
        who(connection(("Authorization", "Bearer wfsk_00000000_guessed")), API_KEY, lookup)


def test_trusted_proxy_mode_believes_the_header_from_a_trusted_peer_only(lookup: KeyLookup) -> None:
    assert who(connection(("X-User-ID", "lab-a"), client="10.0.0.5"), PROXIED, lookup) == "lab-a"
    assert (
        who(connection(("X-User-ID", "lab-a"), ("X-Forwarded-For", "192.0.2.7"), client="10.0.0.7"), PROXIED, lookup)
        == "lab-a"
    )
    assert who(connection(("X-User-ID", "lab-a"), client="::ffff:10.0.0.1"), PROXIED, lookup) == "lab-a"
    for peer in ["127.0.0.1", "10.0.0.8", "::1", "unknown", ""]:
        with pytest.raises(ForbiddenError, match="trusted proxy"):
            who(connection(("X-User-ID", "lab-a"), client=peer), PROXIED, lookup)
    with pytest.raises(UnauthorizedError, match="no X-User-ID"):
        who(connection(client=PROXY), PROXIED, lookup)


@pytest.mark.parametrize(
    "forwarded", ["10.0.0.5", "192.0.2.7, 10.0.0.5", "10.0.0.5:443", "::ffff:10.0.0.5", "[::ffff:10.0.0.5]:1"]
)
def test_a_peer_that_x_forwarded_for_names_is_not_taken_for_the_proxy(forwarded: str, lookup: KeyLookup) -> None:
    # Serve's uvicorn puts an X-Forwarded-For address in the client slot when the real peer is loopback.
    request = connection(("X-User-ID", "lab-a"), ("X-Forwarded-For", forwarded), client=PROXY)
    with pytest.raises(ForbiddenError):
        who(request, PROXIED, lookup)


@pytest.mark.parametrize("settings", [HEADER, API_KEY, PROXIED], ids=lambda s: s.auth_mode.value)
def test_a_stream_token_works_in_every_mode(settings: Settings, lookup: KeyLookup) -> None:
    token, _ = tokens.issue("lab-a", settings.stream_token_secret, ttl_s=60)
    assert asyncio.run(stream_identity(connection(), token, settings, lookup)) == "lab-a"
    assert asyncio.run(stream_identity(connection(("X-User-ID", "lab-a")), token, settings, lookup)) == "lab-a"
    with pytest.raises(ForbiddenError):
        asyncio.run(stream_identity(connection(("X-User-ID", "lab-b")), token, settings, lookup))
    with pytest.raises(InvalidRequestError):
        asyncio.run(
            stream_identity(connection(("X-User-ID", "lab-a"), ("X-User-ID", "lab-a")), token, settings, lookup)
        )
    with pytest.raises(UnauthorizedError):
        asyncio.run(stream_identity(connection(), token + "x", settings, lookup))


def test_a_replica_behind_direct_ingress_refuses_trusted_proxy_mode() -> None:
    """Behind HAProxy every request's peer is HAProxy (measured: with 127.0.0.1 trusted, any client
    that reached the port was taken for the proxy), so a cluster started with Serve's direct
    ingress on gets no replica in that mode; the other modes do not look at the peer."""
    proxied = Settings.from_env(auth_mode=AuthMode.trusted_proxy, trusted_proxies=(ipaddress.ip_network(PROXY),))
    with pytest.raises(SettingsError, match="auth_mode trusted_proxy needs ingress serve"):
        refuse_trusted_proxy_behind_haproxy(proxied, direct_ingress=True)
    refuse_trusted_proxy_behind_haproxy(proxied, direct_ingress=False)
    for mode in (AuthMode.header, AuthMode.api_key):
        refuse_trusted_proxy_behind_haproxy(Settings.from_env(auth_mode=mode), direct_ingress=True)
