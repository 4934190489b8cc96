"""SQLite implementation of RunStore: one file, WAL, one writer (the scheduler), many readers."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from wfsched.models.event import Event
from wfsched.models.state import IdempotentSubmission, JobRecord, WorkflowRecord, WorkflowStatus

SCHEMA = """
CREATE TABLE IF NOT EXISTS workflows (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    admitted_at REAL,
    finished_at REAL,
    request_id TEXT
);
CREATE INDEX IF NOT EXISTS workflows_by_user ON workflows (user_id, seq);
CREATE INDEX IF NOT EXISTS workflows_by_status ON workflows (status);
CREATE TABLE IF NOT EXISTS jobs (
    workflow_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    branch TEXT NOT NULL,
    job_type TEXT NOT NULL,
    image_path TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL,
    finished_at REAL,
    progress_done INTEGER NOT NULL,
    progress_total INTEGER NOT NULL,
    result TEXT,
    error TEXT,
    attempt INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, job_id)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    ts REAL NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (workflow_id, seq)
);
CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, id);
CREATE TABLE IF NOT EXISTS idempotent_submissions (
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    status TEXT NOT NULL,
    queue_position INTEGER,
    created_at REAL NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX IF NOT EXISTS idempotent_submissions_by_age ON idempotent_submissions (created_at);
"""

UPSERT_IDEMPOTENT = """
INSERT OR REPLACE INTO idempotent_submissions
    (user_id, key, body_sha256, workflow_id, status, queue_position, created_at)
VALUES (:user_id, :key, :body_sha256, :workflow_id, :status, :queue_position, :created_at)
"""

UPSERT_WORKFLOW = """
INSERT INTO workflows (workflow_id, user_id, name, status, created_at, admitted_at, finished_at, request_id)
VALUES (:workflow_id, :user_id, :name, :status, :created_at, :admitted_at, :finished_at, :request_id)
ON CONFLICT (workflow_id) DO UPDATE SET
    status = excluded.status, admitted_at = excluded.admitted_at, finished_at = excluded.finished_at
"""

UPSERT_JOB = """
INSERT INTO jobs (workflow_id, job_id, idx, branch, job_type, image_path, depends_on, params, status,
                  started_at, finished_at, progress_done, progress_total, result, error, attempt)
VALUES (:workflow_id, :job_id, :index, :branch, :job_type, :image_path, :depends_on, :params, :status,
        :started_at, :finished_at, :progress_done, :progress_total, :result, :error, :attempt)
ON CONFLICT (workflow_id, job_id) DO UPDATE SET
    status = excluded.status, started_at = excluded.started_at, finished_at = excluded.finished_at,
    progress_done = excluded.progress_done, progress_total = excluded.progress_total,
    result = excluded.result, error = excluded.error, attempt = excluded.attempt
"""

# How long a connection waits for another's lock before it gives up.
BUSY_TIMEOUT_S = 10.0

WORKFLOW_COLUMNS = "seq, workflow_id, user_id, name, status, created_at, admitted_at, finished_at, request_id"
# Columns added since the first schema, each with its type: a database made before one gets it on opening.
ADDED_COLUMNS = {"workflows": {"request_id": "TEXT"}}


class SqliteRunStore:
    """A RunStore in one SQLite file. Open one per process; only the scheduler writes."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        # A reader must not fail while the scheduler commits.
        self._db.execute(f"PRAGMA busy_timeout = {int(1000 * BUSY_TIMEOUT_S)}")
        self._set_up()

    def _set_up(self) -> None:
        """WAL and the schema. Processes that open a new file at once race here (the scheduler and
        the progress fan-out start together); switching to WAL does not wait for a busy lock, so
        this does, within the same bound as everything else."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                if self._db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self._db.execute("PRAGMA journal_mode = WAL")
                # WAL with NORMAL survives a process crash (not a power cut) at a fraction of FULL's cost.
                self._db.execute("PRAGMA synchronous = NORMAL")
                self._db.executescript(SCHEMA)
                self._add_missing_columns()
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _add_missing_columns(self) -> None:
        for table, columns in ADDED_COLUMNS.items():
            present = {row["name"] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for column, kind in columns.items():
                if column in present:
                    continue
                try:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                except sqlite3.OperationalError as error:
                    if "duplicate column" not in str(error):  # another process added it first
                        raise

    def save(
        self,
        workflows: Iterable[WorkflowRecord] = (),
        jobs: Iterable[JobRecord] = (),
        events: Iterable[tuple[str, Event]] = (),
        idempotent: Iterable[IdempotentSubmission] = (),
    ) -> None:
        workflow_rows = [_workflow_row(w) for w in workflows]
        job_rows = [_job_row(j) for j in jobs]
        idempotent_rows = [i.model_dump(mode="json") for i in idempotent]
        events = list(events)
        with self._transaction():
            self._db.executemany(UPSERT_WORKFLOW, workflow_rows)
            self._db.executemany(UPSERT_JOB, job_rows)
            self._db.executemany(UPSERT_IDEMPOTENT, idempotent_rows)
            for user_id, event in events:
                cursor = self._db.execute(
                    "INSERT INTO events (workflow_id, user_id, seq, type, ts, data) VALUES (?, ?, ?, ?, ?, ?)",
                    _event_row(user_id, event),
                )
                event.id = cursor.lastrowid

    def load_unfinished(self) -> list[tuple[WorkflowRecord, list[JobRecord]]]:
        rows = self._db.execute(
            f"SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE status IN (?, ?) ORDER BY seq",
            (WorkflowStatus.queued.value, WorkflowStatus.running.value),
        ).fetchall()
        return [(_workflow(row), self.get_jobs(row["workflow_id"])) for row in rows]

    def last_event_seq(self, workflow_id: str) -> int:
        row = self._db.execute("SELECT MAX(seq) FROM events WHERE workflow_id = ?", (workflow_id,)).fetchone()
        return int(row[0] or 0)

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        row = self._db.execute(
            f"SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE workflow_id = ?", (workflow_id,)
        ).fetchone()
        return _workflow(row) if row else None

    def get_jobs(self, workflow_id: str) -> list[JobRecord]:
        rows = self._db.execute("SELECT * FROM jobs WHERE workflow_id = ? ORDER BY idx", (workflow_id,))
        return [_job(row) for row in rows]

    def list_workflows(
        self, user_id: str, status: WorkflowStatus | None, before: str | None, limit: int
    ) -> list[WorkflowRecord]:
        query = f"SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE user_id = ?"
        args: list[Any] = [user_id]
        if status is not None:
            query += " AND status = ?"
            args.append(status.value)
        if before is not None:
            query += " AND seq < (SELECT seq FROM workflows WHERE workflow_id = ? AND user_id = ?)"
            args += [before, user_id]
        query += " ORDER BY seq DESC LIMIT ?"
        args.append(limit)
        return [_workflow(row) for row in self._db.execute(query, args)]

    def get_idempotent(self, user_id: str, key: str) -> IdempotentSubmission | None:
        row = self._db.execute(
            "SELECT * FROM idempotent_submissions WHERE user_id = ? AND key = ?", (user_id, key)
        ).fetchone()
        return IdempotentSubmission(**dict(row)) if row else None

    def forget_idempotent_before(self, created_before: float) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM idempotent_submissions WHERE created_at < ?", (created_before,))

    def events_after(self, workflow_id: str, after_seq: int, limit: int = 1000) -> list[Event]:
        rows = self._db.execute(
            "SELECT id, workflow_id, seq, type, ts, data FROM events WHERE workflow_id = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            (workflow_id, after_seq, limit),
        )
        return [_event(row) for row in rows]

    def user_events_after(self, user_id: str, after_id: int, limit: int = 1000) -> list[Event]:
        rows = self._db.execute(
            "SELECT id, workflow_id, seq, type, ts, data FROM events WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?",
            (user_id, after_id, limit),
        )
        return [_event(row) for row in rows]

    def feed_after(self, after_id: int, limit: int = 1000) -> list[tuple[str, Event]]:
        """Everyone's events after the global `after_id`, each with its owner, in id order."""
        rows = self._db.execute(
            "SELECT id, workflow_id, user_id, seq, type, ts, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [(row["user_id"], _event(row)) for row in rows]

    def last_event_id(self) -> int:
        return int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _workflow_row(w: WorkflowRecord) -> dict[str, Any]:
    return w.model_dump(mode="json", exclude={"queue_position"})


def _job_row(j: JobRecord) -> dict[str, Any]:
    row = j.model_dump(mode="json")
    for column in ("depends_on", "params", "result"):
        row[column] = None if row[column] is None else json.dumps(row[column])
    return row


def _event_row(user_id: str, e: Event) -> tuple[Any, ...]:
    return (e.workflow_id, user_id, e.seq, e.type.value, e.ts, json.dumps(e.data))


# Columns stored as JSON text, and columns whose model field has another name.
_JSON_COLUMNS = frozenset({"depends_on", "params", "result", "data"})
_FIELD_OF_COLUMN = {"idx": "index"}


def _fields(row: sqlite3.Row) -> dict[str, Any]:
    """A row as its model's fields: JSON columns decoded, renamed columns renamed (pydantic checks the rest)."""
    fields: dict[str, Any] = {}
    for column, value in zip(row.keys(), row, strict=True):  # a Row iterates its values, not its keys
        fields[_FIELD_OF_COLUMN.get(column, column)] = (
            json.loads(value) if column in _JSON_COLUMNS and value is not None else value
        )
    return fields


def _workflow(row: sqlite3.Row) -> WorkflowRecord:
    return WorkflowRecord.model_validate(_fields(row))


def _job(row: sqlite3.Row) -> JobRecord:
    return JobRecord.model_validate(_fields(row))


def _event(row: sqlite3.Row) -> Event:
    return Event.model_validate(_fields(row))
