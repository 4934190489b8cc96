from __future__ import annotations

import pytest

from wfsched.api import tokens
from wfsched.exceptions import UnauthorizedError


def test_a_token_names_its_user_until_it_expires() -> None:
    token, expires_at = tokens.issue("alice", "secret", ttl_s=60, now=1000.0)
    assert expires_at == 1060.0
    assert tokens.verify(token, "secret", ttl_s=60, now=1059.0) == "alice"
    with pytest.raises(UnauthorizedError, match="expired"):
        tokens.verify(token, "secret", ttl_s=60, now=1061.0)


def test_a_forged_or_mangled_token_is_refused() -> None:
    token, _ = tokens.issue("alice", "secret", ttl_s=60)
    _, _, signature = token.partition(".")
    forged, _ = tokens.issue("mallory", "secret", ttl_s=60)
    non_ascii = [token + "é", f"{token.partition('.')[0]}.{'²' * len(signature)}", "é.é", "\udc80.x"]
    for bad in (token + "x", f"{forged.partition('.')[0]}.{signature}", "nonsense", "", "a.b", *non_ascii):
        with pytest.raises(UnauthorizedError):
            tokens.verify(bad, "secret", ttl_s=60)
    with pytest.raises(UnauthorizedError):
        tokens.verify(token, "another secret", ttl_s=60)
