"""The one connection a store holds, SQLite or PostgreSQL: the few calls the stores make.

The stores (runs.py, keys.py) write their SQL once, in what both engines speak, with parameters
named in SQLite's `:name` style; the PostgreSQL connection rewrites them into psycopg's. What
differs between the engines lives behind this protocol: opening, setting up a schema, the
transaction that makes a writer the only one, and the definition of a numbered key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, TypeAlias

from wfsched.config import DatabaseLocation

Params: TypeAlias = Mapping[str, Any]
Row: TypeAlias = dict[str, Any]
AddedColumns: TypeAlias = Mapping[str, Mapping[str, str]]
"""Columns added to a table since its first schema: {table: {column: type}}."""


class Database(Protocol):
    #: The definition of an integer primary key the database numbers (`{auto_key}` in a schema).
    auto_key: str

    def set_up(self, schema: str, added_columns: AddedColumns) -> None:
        """Create what `schema` creates, if it is not there, and add the missing `added_columns`.
        Safe when several processes open the same new database at once."""
        ...

    def fetch(self, query: str, params: Params | None = None) -> list[Row]:
        """The rows a query returns, each a dict by column name."""
        ...

    def execute(self, query: str, params: Params | None = None) -> None: ...

    def execute_many(self, query: str, rows: Sequence[Params]) -> None: ...

    def transaction(self) -> AbstractContextManager[None]:
        """All of the block or none of it, with no other writer of the database meanwhile."""
        ...

    def close(self) -> None: ...


def open_database(db: DatabaseLocation) -> Database:
    """A connection to the SQLite file at `db`, or to PostgreSQL when `db` is a `postgresql://` URL."""
    # Imported here: both import this module's types, and psycopg loads only where it is used.
    if isinstance(db, Path):
        from wfsched.store.sqlite import SqliteDatabase

        return SqliteDatabase(db)
    from wfsched.store.postgres import PostgresDatabase

    return PostgresDatabase(db)


def shown(db: DatabaseLocation) -> str:
    """`db` as a log line may show it: a URL's password (`user:password@`, `password=`) as ****."""
    if isinstance(db, Path):
        return str(db)
    without = re.sub(r"(password=)[^&]*", r"\1****", db)
    return re.sub(r"^([^:/]+://[^:/@]*:)[^/@]*@", r"\1****@", without)
