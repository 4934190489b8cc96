"""The store tests run on each engine: a SQLite file, and a database on a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest

from wfsched.config import DatabaseLocation


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> DatabaseLocation:
    """Where a test's store lives: a new SQLite file in a folder yet to be made, or a new database."""
    if request.param == "sqlite":
        return tmp_path / "nested" / "wfsched.db"
    url: DatabaseLocation = request.getfixturevalue("postgres").new_database()
    return url
