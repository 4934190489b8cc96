"""The run store on each engine (the `db` fixture): what the scheduler and the progress feed count on."""

from __future__ import annotations

import sqlite3
import threading

import psycopg
import pytest

from wfsched.config import DatabaseLocation
from wfsched.models.event import Event, EventType
from wfsched.models.state import (
    IdempotentSubmission,
    JobRecord,
    JobResult,
    JobStatus,
    WorkflowRecord,
    WorkflowStatus,
)
from wfsched.store.runs import SqlRunStore


def event(seq: int, workflow_id: str = "w", **data: object) -> Event:
    return Event(workflow_id=workflow_id, seq=seq, type=EventType.workflow_admitted, ts=2.0 + seq, data=data)


def test_round_trip_and_reopen(db: DatabaseLocation) -> None:
    store = SqlRunStore(db)
    workflow = WorkflowRecord(workflow_id="w", user_id="u", name="n", created_at=1_796_000_000.123456)
    job = JobRecord(
        workflow_id="w",
        job_id="j",
        index=0,
        branch="b",
        job_type="t",
        image_path="/x",
        depends_on=["k"],
        params={"a": [1, 2], "é": {"z": None, "b": 0.1}},
    )
    first = event(1, x=1)
    store.save([workflow], [job], [("u", first)])
    job.status, job.result = JobStatus.succeeded, JobResult(artifacts=["cells.geojson"], count=3)
    job.started_at = 1_796_000_001.5
    workflow.status = WorkflowStatus.running
    store.save([workflow], [job])
    store.close()

    reopened = SqlRunStore(db)
    ((loaded, jobs),) = reopened.load_unfinished()
    assert loaded == workflow  # epoch seconds keep their microseconds
    assert jobs == [job]
    assert reopened.events_after("w", 0) == [first]
    assert reopened.last_event_seq("w") == 1
    assert reopened.last_event_seq("nothing") == 0
    assert reopened.get_workflow("nope") is None


def test_listing_is_per_user_newest_first_with_a_cursor(db: DatabaseLocation) -> None:
    store = SqlRunStore(db)
    for i in range(5):
        store.save([WorkflowRecord(workflow_id=f"w{i}", user_id="u" if i != 2 else "v", name="n", created_at=i)])
    rows = store.list_workflows("u", None, None, 2)
    assert [r.workflow_id for r in rows] == ["w4", "w3"]
    rows = store.list_workflows("u", None, rows[-1].workflow_id, 10)
    assert [r.workflow_id for r in rows] == ["w1", "w0"]
    assert store.list_workflows("u", WorkflowStatus.succeeded, None, 10) == []
    # Another user's workflow as the cursor pages nothing of theirs or ours.
    assert store.list_workflows("u", None, "w2", 10) == []


def test_finished_workflows_are_not_loaded_again(db: DatabaseLocation) -> None:
    store = SqlRunStore(db)
    statuses = [WorkflowStatus.queued, WorkflowStatus.succeeded, WorkflowStatus.running, WorkflowStatus.cancelled]
    store.save(
        [
            WorkflowRecord(workflow_id=f"w{i}", user_id="u", name="n", created_at=i, status=s)
            for i, s in enumerate(statuses)
        ]
    )
    assert [w.workflow_id for w, _ in store.load_unfinished()] == ["w0", "w2"]  # in submission order
    assert [r.workflow_id for r in store.list_workflows("u", WorkflowStatus.running, None, 10)] == ["w2"]


def test_a_failed_save_leaves_nothing_half_written_and_no_gap_in_ids(db: DatabaseLocation) -> None:
    store = SqlRunStore(db)
    store.save(events=[("u", event(1))])
    workflow = WorkflowRecord(workflow_id="w2", user_id="u", name="n", created_at=1.0)
    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)):
        store.save([workflow], [], [("u", event(1))])  # the duplicate event breaks the transaction
    assert store.get_workflow("w2") is None
    after = event(2)
    store.save(events=[("u", after)])
    assert after.id == 2  # the failed save used no id
    assert [e.id for _, e in store.feed_after(0)] == [1, 2]


def test_events_get_global_ids_in_order_and_are_read_by_workflow_user_and_feed(db: DatabaseLocation) -> None:
    store = SqlRunStore(db)
    owned = [("alice", event(1, "a")), ("bob", event(1, "b")), ("alice", event(2, "a")), ("bob", event(2, "b"))]
    store.save(events=owned[:3])
    store.save(events=owned[3:])
    assert [e.id for _, e in owned] == [1, 2, 3, 4]
    assert store.last_event_id() == 4
    assert store.events_after("a", 1) == [owned[2][1]]
    assert store.user_events_after("alice", 0) == [owned[0][1], owned[2][1]]
    assert store.user_events_after("bob", 2, limit=1) == [owned[3][1]]
    assert store.feed_after(1, limit=2) == owned[1:3]


def test_event_ids_become_visible_in_order_without_gaps_whatever_writers_overlap(db: DatabaseLocation) -> None:
    # The progress feed reads "everything after id N": an id that commits after a higher one
    # was read would be skipped for ever. The scheduler is the one writer; this tries three.
    writers, reader = [SqlRunStore(db) for _ in range(3)], SqlRunStore(db)
    per_writer = 30

    def write(store: SqlRunStore, workflow_id: str) -> None:
        for seq in range(1, per_writer + 1):
            store.save(events=[("u", event(seq, workflow_id))])

    threads = [threading.Thread(target=write, args=(store, f"w{i}")) for i, store in enumerate(writers)]
    for thread in threads:
        thread.start()
    seen, writing = 0, True
    while writing:
        writing = any(thread.is_alive() for thread in threads)  # then one more read takes the rest
        for _, read in reader.feed_after(seen):
            assert read.id == seen + 1, f"id {read.id} was visible while id {seen + 1} was not"
            seen += 1
    assert seen == per_writer * len(writers)


def test_idempotent_submissions_are_upserted_and_forgotten_by_age(db: DatabaseLocation) -> None:
    store = SqlRunStore(db)
    first = IdempotentSubmission(
        user_id="u",
        key="k",
        body_sha256="a" * 64,
        workflow_id="w1",
        status=WorkflowStatus.queued,
        queue_position=2,
        created_at=10.0,
    )
    store.save(idempotent=[first])
    assert store.get_idempotent("u", "k") == first
    assert store.get_idempotent("v", "k") is None
    again = first.model_copy(
        update={"workflow_id": "w2", "status": WorkflowStatus.running, "queue_position": None, "created_at": 20.0}
    )
    store.save(idempotent=[again])
    assert store.get_idempotent("u", "k") == again
    store.forget_idempotent_before(20.0)
    assert store.get_idempotent("u", "k") == again
    store.forget_idempotent_before(20.5)
    assert store.get_idempotent("u", "k") is None
