"""API keys, hashed at rest, in a table of the service's database (SQLite file or PostgreSQL).

A key is `wfsk_<key_id>_<secret>`: the key id names it in listings and in `revoke`; the secret is
256 random bits from `secrets`. Only the SHA-256 of the whole key is stored. A slow password hash
buys nothing here: nobody can guess 256 random bits, however fast each guess is, so a stolen table
gives away no key. The key is shown once, when it is made.

The admin command (`wfsched keys`) writes this table in the database directly; the scheduler
reads it, so a revocation is seen by its next lookup.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from wfsched.config import DatabaseLocation
from wfsched.exceptions import InvalidRequestError, NotFoundError
from wfsched.store.database import open_database
from wfsched.store.paths import USER_ID_RULE, is_user_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION
);
"""

KEY_COLUMNS = "key_id, user_id, created_at, revoked_at"

KEY_PREFIX = "wfsk_"
# 4 bytes (8 hex characters) tell a handful of keys apart in a listing; the secret does the rest.
KEY_ID_BYTES = 4
# 32 bytes = 256 bits, what `secrets` recommends for tokens that must never be guessed.
SECRET_BYTES = 32


@dataclass(frozen=True)
class ApiKey:
    """What the table holds about a key: never the key itself."""

    key_id: str
    user_id: str
    created_at: float
    revoked_at: float | None

    @property
    def prefix(self) -> str:
        """How the key starts, to recognise it: `wfsk_<key_id>_…`."""
        return f"{KEY_PREFIX}{self.key_id}_…"


def hash_key(key: str) -> str:
    """The SHA-256 hex digest of a key: what is stored, and what a lookup asks for."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh (key_id, key)."""
    key_id = secrets.token_hex(KEY_ID_BYTES)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"


class ApiKeyStore:
    """The api_keys table of the service's database. The scheduler holds one; the admin command another."""

    def __init__(self, db: DatabaseLocation) -> None:
        self._db = open_database(db)
        self._db.set_up(SCHEMA, {})

    def create(self, user_id: str, now: float | None = None) -> tuple[ApiKey, str]:
        """A new key for the user: its record and the key, which is never stored or shown again."""
        if not is_user_id(user_id):
            raise InvalidRequestError(f"user id {user_id!r} is not valid: {USER_ID_RULE}")
        key_id, key = new_key()
        record = ApiKey(key_id, user_id, time.time() if now is None else now, None)
        self._db.execute(
            "INSERT INTO api_keys (key_id, key_hash, user_id, created_at)"
            " VALUES (:key_id, :key_hash, :user_id, :created_at)",
            {"key_id": key_id, "key_hash": hash_key(key), "user_id": user_id, "created_at": record.created_at},
        )
        return record, key

    def list_keys(self) -> list[ApiKey]:
        rows = self._db.fetch(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at")
        return [ApiKey(**row) for row in rows]

    def revoke(self, key_id: str, now: float | None = None) -> ApiKey:
        """Revoke a key (again is fine: the first time counts); NotFoundError if there is none."""
        self._db.execute(
            "UPDATE api_keys SET revoked_at = :now WHERE key_id = :key_id AND revoked_at IS NULL",
            {"now": time.time() if now is None else now, "key_id": key_id},
        )
        rows = self._db.fetch(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = :key_id", {"key_id": key_id})
        if not rows:
            raise NotFoundError(f"no API key {key_id!r}")
        return ApiKey(**rows[0])

    def user_of(self, key_hash: str) -> str | None:
        """The user of the unrevoked key with this hash, else None.

        An index lookup on the hash leaks nothing worth timing: the hash of a guess says nothing
        about the hash of a key.
        """
        rows = self._db.fetch(
            "SELECT user_id FROM api_keys WHERE key_hash = :key_hash AND revoked_at IS NULL", {"key_hash": key_hash}
        )
        return str(rows[0]["user_id"]) if rows else None

    def close(self) -> None:
        self._db.close()
