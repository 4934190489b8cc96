from __future__ import annotations

import hashlib

import pytest

from wfsched.config import DatabaseLocation
from wfsched.exceptions import InvalidRequestError, NotFoundError
from wfsched.store.database import open_database
from wfsched.store.keys import KEY_PREFIX, ApiKeyStore, hash_key, new_key
from wfsched.store.runs import SqlRunStore


def test_a_key_names_its_user_until_it_is_revoked(db: DatabaseLocation) -> None:
    store = ApiKeyStore(db)
    record, key = store.create("lab-a", now=1000.0)
    assert key.startswith(f"{KEY_PREFIX}{record.key_id}_")
    assert (record.user_id, record.created_at, record.revoked_at) == ("lab-a", 1000.0, None)
    assert store.user_of(hash_key(key)) == "lab-a"
    assert store.user_of(hash_key(key + "x")) is None
    revoked = store.revoke(record.key_id, now=2000.0)
    assert revoked.revoked_at == 2000.0
    assert store.user_of(hash_key(key)) is None
    assert store.revoke(record.key_id, now=3000.0).revoked_at == 2000.0  # the first revocation counts


def test_only_the_hash_is_stored(db: DatabaseLocation) -> None:
    store = ApiKeyStore(db)
    _, key = store.create("lab-a")
    secret = _secret(key)
    rows = open_database(db).fetch("SELECT * FROM api_keys")
    assert len(rows) == 1
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest() in rows[0].values()
    assert not any(isinstance(value, str) and (key in value or secret in value) for value in rows[0].values())


def test_keys_are_listed_revoked_by_id_and_other_processes_see_it(db: DatabaseLocation) -> None:
    admin, service = ApiKeyStore(db), ApiKeyStore(db)
    (a, key_a), (b, _) = admin.create("lab-a", now=1.0), admin.create("lab-b", now=2.0)
    assert [(k.key_id, k.user_id) for k in service.list_keys()] == [(a.key_id, "lab-a"), (b.key_id, "lab-b")]
    assert service.user_of(hash_key(key_a)) == "lab-a"
    admin.revoke(a.key_id)
    assert service.user_of(hash_key(key_a)) is None
    with pytest.raises(NotFoundError):
        admin.revoke("no-such-key")


def test_the_key_table_lives_beside_the_run_store(db: DatabaseLocation) -> None:
    runs = SqlRunStore(db)
    keys = ApiKeyStore(db)
    _, key = keys.create("lab-a")
    assert keys.user_of(hash_key(key)) == "lab-a"
    assert runs.list_workflows("lab-a", None, None, 10) == []
    runs.close()
    keys.close()


def test_keys_are_random_and_users_are_checked(db: DatabaseLocation) -> None:
    made = {new_key() for _ in range(100)}
    assert len({key_id for key_id, _ in made}) == len({key for _, key in made}) == 100
    # 32 random bytes in URL-safe base64 are 43 characters.
    assert {len(_secret(key)) for _, key in made} == {43}
    with pytest.raises(InvalidRequestError):
        ApiKeyStore(db).create("../lab-a")


def _secret(key: str) -> str:
    """The random part: after `wfsk_<key_id>_` (the secret itself may hold `_`)."""
    return key.removeprefix(KEY_PREFIX).partition("_")[2]
