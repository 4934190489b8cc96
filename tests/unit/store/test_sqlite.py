from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from wfsched.models.event import Event, EventType
from wfsched.models.state import JobRecord, JobResult, JobStatus, WorkflowRecord, WorkflowStatus
from wfsched.store.sqlite import SqliteRunStore


def test_round_trip_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "runs.db"
    store = SqliteRunStore(path)
    workflow = WorkflowRecord(workflow_id="w", user_id="u", name="n", created_at=1.0)
    job = JobRecord(
        workflow_id="w",
        job_id="j",
        index=0,
        branch="b",
        job_type="t",
        image_path="/x",
        depends_on=["k"],
        params={"a": [1, 2]},
    )
    event = Event(workflow_id="w", seq=1, type=EventType.workflow_admitted, ts=2.0, data={"x": 1})
    store.save([workflow], [job], [("u", event)])
    job.status, job.result = JobStatus.succeeded, JobResult(artifacts=["cells.geojson"], count=3)
    workflow.status = WorkflowStatus.running
    store.save([workflow], [job])
    store.close()

    reopened = SqliteRunStore(path)
    ((loaded, jobs),) = reopened.load_unfinished()
    assert loaded == workflow
    assert jobs == [job]
    assert reopened.events_after("w", 0) == [event]
    assert reopened.last_event_seq("w") == 1
    assert reopened.get_workflow("nope") is None


def test_listing_is_per_user_newest_first_with_a_cursor(tmp_path: Path) -> None:
    store = SqliteRunStore(tmp_path / "db")
    for i in range(5):
        store.save([WorkflowRecord(workflow_id=f"w{i}", user_id="u" if i != 2 else "v", name="n", created_at=i)])
    rows = store.list_workflows("u", None, None, 2)
    assert [r.workflow_id for r in rows] == ["w4", "w3"]
    rows = store.list_workflows("u", None, rows[-1].workflow_id, 10)
    assert [r.workflow_id for r in rows] == ["w1", "w0"]
    assert store.list_workflows("u", WorkflowStatus.succeeded, None, 10) == []
    # Another user's workflow as the cursor pages nothing of theirs or ours.
    assert store.list_workflows("u", None, "w2", 10) == []


def test_a_failed_save_leaves_nothing_half_written(tmp_path: Path) -> None:
    store = SqliteRunStore(tmp_path / "db")
    event = Event(workflow_id="w", seq=1, type=EventType.workflow_admitted, ts=2.0, data={})
    store.save(events=[("u", event)])
    workflow = WorkflowRecord(workflow_id="w2", user_id="u", name="n", created_at=1.0)
    with pytest.raises(sqlite3.IntegrityError):
        store.save([workflow], [], [("u", event)])  # the duplicate event breaks the transaction
    assert store.get_workflow("w2") is None


def test_opening_waits_for_another_connections_lock(tmp_path: Path) -> None:
    # The scheduler and the progress fan-out open the same new file together at every start:
    # one of them meets the other's lock while it switches the file to WAL.
    path = tmp_path / "runs.db"
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.5, lambda: blocker.execute("COMMIT"))
    release.start()
    store = SqliteRunStore(path)
    release.join()
    assert store.list_workflows("u", None, None, 1) == []


def test_connections_opening_a_new_file_at_once_do_not_fail(tmp_path: Path) -> None:
    # SQLite answers "locked" at once, without waiting, to one of two connections that both read
    # and then both want to write: the first open of a file switches it to WAL and creates tables.
    for attempt in range(30):
        path = tmp_path / f"race-{attempt}.db"
        start = threading.Barrier(6)
        errors: list[Exception] = []

        def open_store(path: Path = path, start: threading.Barrier = start, errors: list[Exception] = errors) -> None:
            start.wait()
            try:
                SqliteRunStore(path).close()
            except Exception as error:
                errors.append(error)

        threads = [threading.Thread(target=open_store) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []


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
    store = SqliteRunStore(path)
    assert store.get_workflow("w0") == WorkflowRecord(workflow_id="w0", user_id="u", name="n", created_at=1.0)
    store.save([WorkflowRecord(workflow_id="w1", user_id="u", name="n", created_at=2.0, request_id="req-1")])
    store.close()
    again = SqliteRunStore(path)  # opening once more adds nothing twice
    assert [(w.workflow_id, w.request_id) for w, _ in again.load_unfinished()] == [("w0", None), ("w1", "req-1")]
