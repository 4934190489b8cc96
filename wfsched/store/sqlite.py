"""The SQLite connection (the embedded default): one file, WAL, one writer (the scheduler), many readers."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from wfsched.store.database import AddedColumns, Params, Row

# How long a connection waits for another's lock before it gives up.
BUSY_TIMEOUT_S = 10.0


class SqliteDatabase:
    """A connection to one SQLite file, in autocommit mode outside `transaction()`."""

    auto_key = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = _dict_row
        # A reader must not fail while the scheduler commits.
        self._db.execute(f"PRAGMA busy_timeout = {int(1000 * BUSY_TIMEOUT_S)}")

    def set_up(self, schema: str, added_columns: AddedColumns) -> None:
        """WAL and the schema. Processes that open a new file at once race here (the scheduler and
        the progress fan-out start together); switching to WAL does not wait for a busy lock, so
        this does, within the same bound as everything else."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                if self._db.execute("PRAGMA journal_mode").fetchone()["journal_mode"] != "wal":
                    self._db.execute("PRAGMA journal_mode = WAL")
                # WAL with NORMAL survives a process crash (not a power cut) at a fraction of FULL's cost.
                self._db.execute("PRAGMA synchronous = NORMAL")
                self._db.executescript(schema)
                self._add_missing_columns(added_columns)
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _add_missing_columns(self, added_columns: AddedColumns) -> None:
        for table, columns in added_columns.items():
            present = {row["name"] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for column, kind in columns.items():
                if column in present:
                    continue
                try:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                except sqlite3.OperationalError as error:
                    if "duplicate column" not in str(error):  # another process added it first
                        raise

    def fetch(self, query: str, params: Params | None = None) -> list[Row]:
        return self._db.execute(query, params or {}).fetchall()

    def execute(self, query: str, params: Params | None = None) -> None:
        self._db.execute(query, params or {})

    def execute_many(self, query: str, rows: Sequence[Params]) -> None:
        if rows:
            self._db.executemany(query, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the file's one write lock at once: writers go one at a time.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


def _dict_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, values, strict=True)}
