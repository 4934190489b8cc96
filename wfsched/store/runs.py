"""The RunStore of wfsched, on SQLite (the embedded default) or PostgreSQL: one schema, one set of
queries and one row mapping for both; database.py holds what differs between the engines.

Event ids are given here, inside the save's transaction, as the newest id + 1: writers go one at
a time (database.py), so ids have no gaps and commit in id order on both engines. A PostgreSQL
sequence would not do: ids drawn by transactions that overlap can commit out of order, and a
rolled-back save leaves a gap for ever, while the progress feed (control/progress_state.py) holds
back what follows a missing id until the store fills the gap.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic_core import to_json

from wfsched.config import DatabaseLocation
from wfsched.models.event import Event
from wfsched.models.state import IdempotentSubmission, JobRecord, WorkflowRecord, WorkflowStatus
from wfsched.store.database import Row, open_database

# `{auto_key}` is the engine's numbered key. Times are DOUBLE PRECISION: PostgreSQL's REAL has
# 24 bits, too few for epoch seconds; SQLite reads either name as its 8-byte REAL.
SCHEMA = """
CREATE TABLE IF NOT EXISTS workflows (
    seq {auto_key},
    workflow_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    admitted_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    request_id TEXT
);
CREATE INDEX IF NOT EXISTS workflows_by_user ON workflows (user_id, seq);
-- The unfinished ones, at start-up; and one user's workflows of one status (a filtered list), which
-- by status alone would walk every user's finished workflows.
CREATE INDEX IF NOT EXISTS workflows_by_status ON workflows (status);
CREATE INDEX IF NOT EXISTS workflows_by_user_status ON workflows (user_id, status, seq);
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
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    progress_done INTEGER NOT NULL,
    progress_total INTEGER NOT NULL,
    result TEXT,
    error TEXT,
    attempt INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, job_id)
);
CREATE TABLE IF NOT EXISTS events (
    id {auto_key},
    workflow_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
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
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX IF NOT EXISTS idempotent_submissions_by_age ON idempotent_submissions (created_at);
"""
# Columns added since the first schema, each with its type: a database made before one gets it on opening.
ADDED_COLUMNS = {"workflows": {"request_id": "TEXT"}}

UPSERT_IDEMPOTENT = """
INSERT INTO idempotent_submissions
    (user_id, key, body_sha256, workflow_id, status, queue_position, created_at)
VALUES (:user_id, :key, :body_sha256, :workflow_id, :status, :queue_position, :created_at)
ON CONFLICT (user_id, key) DO UPDATE SET
    body_sha256 = excluded.body_sha256, workflow_id = excluded.workflow_id, status = excluded.status,
    queue_position = excluded.queue_position, created_at = excluded.created_at
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

INSERT_EVENT = """
INSERT INTO events (id, workflow_id, user_id, seq, type, ts, data)
VALUES (:id, :workflow_id, :user_id, :seq, :type, :ts, :data)
"""

WORKFLOW_COLUMNS = "seq, workflow_id, user_id, name, status, created_at, admitted_at, finished_at, request_id"
EVENT_COLUMNS = "id, workflow_id, seq, type, ts, data"


class SqlRunStore:
    """A RunStore in the service's database. Open one per process; only the scheduler writes."""

    def __init__(self, db: DatabaseLocation) -> None:
        self._db = open_database(db)
        self._db.set_up(SCHEMA.format(auto_key=self._db.auto_key), ADDED_COLUMNS)

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
        with self._db.transaction():
            self._db.execute_many(UPSERT_WORKFLOW, workflow_rows)
            self._db.execute_many(UPSERT_JOB, job_rows)
            self._db.execute_many(UPSERT_IDEMPOTENT, idempotent_rows)
            first_id = self.last_event_id() + 1 if events else 0
            event_rows = [_event_row(first_id + i, user_id, e) for i, (user_id, e) in enumerate(events)]
            self._db.execute_many(INSERT_EVENT, event_rows)
        for i, (_, event) in enumerate(events):
            event.id = first_id + i

    def load_unfinished(self) -> list[tuple[WorkflowRecord, list[JobRecord]]]:
        rows = self._db.fetch(
            f"SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE status IN (:queued, :running) ORDER BY seq",
            {"queued": WorkflowStatus.queued.value, "running": WorkflowStatus.running.value},
        )
        return [(_workflow(row), self.get_jobs(row["workflow_id"])) for row in rows]

    def last_event_seq(self, workflow_id: str) -> int:
        (row,) = self._db.fetch(
            "SELECT COALESCE(MAX(seq), 0) AS last FROM events WHERE workflow_id = :workflow_id",
            {"workflow_id": workflow_id},
        )
        return int(row["last"])

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        rows = self._db.fetch(
            f"SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE workflow_id = :workflow_id", {"workflow_id": workflow_id}
        )
        return _workflow(rows[0]) if rows else None

    def get_jobs(self, workflow_id: str) -> list[JobRecord]:
        rows = self._db.fetch(
            "SELECT * FROM jobs WHERE workflow_id = :workflow_id ORDER BY idx", {"workflow_id": workflow_id}
        )
        return [_job(row) for row in rows]

    def list_workflows(
        self, user_id: str, status: WorkflowStatus | None, before: str | None, limit: int
    ) -> list[WorkflowRecord]:
        query = f"SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE user_id = :user_id"
        params: dict[str, Any] = {"user_id": user_id, "limit": limit}
        if status is not None:
            query += " AND status = :status"
            params["status"] = status.value
        if before is not None:
            query += " AND seq < (SELECT seq FROM workflows WHERE workflow_id = :before AND user_id = :user_id)"
            params["before"] = before
        query += " ORDER BY seq DESC LIMIT :limit"
        return [_workflow(row) for row in self._db.fetch(query, params)]

    def get_idempotent(self, user_id: str, key: str) -> IdempotentSubmission | None:
        rows = self._db.fetch(
            "SELECT * FROM idempotent_submissions WHERE user_id = :user_id AND key = :key",
            {"user_id": user_id, "key": key},
        )
        return IdempotentSubmission(**rows[0]) if rows else None

    def forget_idempotent_before(self, created_before: float) -> None:
        with self._db.transaction():
            self._db.execute(
                "DELETE FROM idempotent_submissions WHERE created_at < :created_before",
                {"created_before": created_before},
            )

    def events_after(self, workflow_id: str, after_seq: int, limit: int = 1000) -> list[Event]:
        rows = self._db.fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE workflow_id = :workflow_id AND seq > :after_seq"
            " ORDER BY seq LIMIT :limit",
            {"workflow_id": workflow_id, "after_seq": after_seq, "limit": limit},
        )
        return [_event(row) for row in rows]

    def user_events_after(self, user_id: str, after_id: int, limit: int = 1000) -> list[Event]:
        rows = self._db.fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE user_id = :user_id AND id > :after_id ORDER BY id LIMIT :limit",
            {"user_id": user_id, "after_id": after_id, "limit": limit},
        )
        return [_event(row) for row in rows]

    def feed_after(self, after_id: int, limit: int = 1000) -> list[tuple[str, Event]]:
        """Everyone's events after the global `after_id`, each with its owner, in id order."""
        rows = self._db.fetch(
            f"SELECT user_id, {EVENT_COLUMNS} FROM events WHERE id > :after_id ORDER BY id LIMIT :limit",
            {"after_id": after_id, "limit": limit},
        )
        return [(row.pop("user_id"), _event(row)) for row in rows]

    def last_event_id(self) -> int:
        (row,) = self._db.fetch("SELECT COALESCE(MAX(id), 0) AS last FROM events")
        return int(row["last"])

    def close(self) -> None:
        self._db.close()


def _workflow_row(w: WorkflowRecord) -> dict[str, Any]:
    return w.model_dump(mode="json", exclude={"queue_position"})


def _job_row(j: JobRecord) -> dict[str, Any]:
    """A job's fields as they are, JSON columns encoded: a quarter of the time of `model_dump`
    and `json.dumps`, for the rows the scheduler saves at each start and end of a job."""
    return {
        **j.__dict__,
        "status": j.status.value,
        "depends_on": _json_text(j.depends_on),
        "params": _json_text(j.params),
        "result": None if j.result is None else j.result.model_dump_json(),
    }


def _event_row(event_id: int, user_id: str, e: Event) -> dict[str, Any]:
    return {
        "id": event_id,
        "workflow_id": e.workflow_id,
        "user_id": user_id,
        "seq": e.seq,
        "type": e.type.value,
        "ts": e.ts,
        "data": _json_text(e.data),
    }


def _json_text(value: Any) -> str:
    return to_json(value).decode()


# Columns stored as JSON text (both engines: nothing queries inside them, and text gives back
# exactly what was saved), and columns whose model field has another name.
_JSON_COLUMNS = frozenset({"depends_on", "params", "result", "data"})
_FIELD_OF_COLUMN = {"idx": "index"}


def _fields(row: Row) -> dict[str, Any]:
    """A row as its model's fields: JSON columns decoded, renamed columns renamed (pydantic checks the rest)."""
    return {
        _FIELD_OF_COLUMN.get(column, column): json.loads(value)
        if column in _JSON_COLUMNS and value is not None
        else value
        for column, value in row.items()
    }


def _workflow(row: Row) -> WorkflowRecord:
    return WorkflowRecord.model_validate(_fields(row))


def _job(row: Row) -> JobRecord:
    return JobRecord.model_validate(_fields(row))


def _event(row: Row) -> Event:
    return Event.model_validate(_fields(row))
