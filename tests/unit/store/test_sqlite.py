"""What only the SQLite file does: opening a file that others hold or open at once, and old files."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from tests.support.threads import errors_at_once
from wfsched.models.state import WorkflowRecord
from wfsched.store.runs import SqlRunStore


def test_opening_waits_for_another_connections_lock(tmp_path: Path) -> None:
    # The scheduler and the progress fan-out open the same new file together at every start:
    # one of them meets the other's lock while it switches the file to WAL.
    path = tmp_path / "runs.db"
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.5, lambda: blocker.execute("COMMIT"))
    release.start()
    store = SqlRunStore(path)
    release.join()
    assert store.list_workflows("u", None, None, 1) == []


def test_connections_opening_a_new_file_at_once_do_not_fail(tmp_path: Path) -> None:
    # SQLite answers "locked" at once, without waiting, to one of two connections that both read
    # and then both want to write: the first open of a file switches it to WAL and creates tables.
    for attempt in range(30):
        path = tmp_path / f"race-{attempt}.db"
        assert errors_at_once(lambda path=path: SqlRunStore(path).close()) == []


def test_a_database_from_before_request_ids_gets_the_column_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        """CREATE TABLE workflows (seq INTEGER PRIMARY KEY AUTOINCREMENT, workflow_id TEXT NOT NULL UNIQUE,
        user_id TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL,
        admitted_at REAL, finished_at REAL);
        INSERT INTO workflows (workflow_id, user_id, name, status, created_at) VALUES ('w0', 'u', 'n', 'queued', 1);"""
    )
    old.close()
    store = SqlRunStore(path)
    assert store.get_workflow("w0") == WorkflowRecord(workflow_id="w0", user_id="u", name="n", created_at=1.0)
    store.save([WorkflowRecord(workflow_id="w1", user_id="u", name="n", created_at=2.0, request_id="req-1")])
    store.close()
    again = SqlRunStore(path)  # opening once more adds nothing twice
    assert [(w.workflow_id, w.request_id) for w, _ in again.load_unfinished()] == [("w0", None), ("w1", "req-1")]
