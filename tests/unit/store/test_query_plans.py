"""Every query the service runs finds its rows through an index: none reads a whole table.

The statements are not listed by hand: a real workload (submissions of several users, a queue,
jobs that finish, lists and pages, event reads, idempotency, a restart) runs over a SQLite store
with a trace on its connection, and SQLite's EXPLAIN QUERY PLAN is asked about each statement it
saw. A full scan would make that call cost grow with every finished workflow.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from tests.unit.control.test_scheduler_state import Clock, finish, jobs
from wfsched.control.scheduler_state import SchedulerState
from wfsched.models.state import WorkflowStatus
from wfsched.store.keys import ApiKeyStore, hash_key
from wfsched.store.runs import SqlRunStore
from wfsched.store.sqlite import SqliteDatabase

# A plan step that reads every row of a table (SQLite says `SCAN table`, and `SCAN table USING
# COVERING INDEX …` still reads every entry); searches and index walks in order are what we want.
FULL_SCAN = re.compile(r"^SCAN (?!CONSTANT ROW)")


def trace(database: object, statements: list[str]) -> None:
    """Add to `statements` every statement the store's connection runs, with its values filled in."""
    assert isinstance(database, SqliteDatabase)
    database._db.set_trace_callback(statements.append)  # the store's one connection


def run_workload(db: Path) -> list[str]:
    store = SqlRunStore(db)
    statements: list[str] = []
    trace(store._db, statements)
    state = SchedulerState(store, max_active_users=2, clock=Clock())
    for n in range(6):
        user = f"u{n % 3}"
        state.submit(f"w{n}", user, "n", jobs(f"w{n}", [("a", "m", []), ("b", "m", ["a"])]), idempotency=(f"k{n}", "h"))
    for n in (0, 1, 3, 4):  # u0 and u1's workflows finish; u2 is admitted
        finish(state, f"w{n}", "a")
        finish(state, f"w{n}", "b")
    state.submit("w0-again", "u0", "n", jobs("w0-again", [("a", "m", [])]), idempotency=("k0", "h"))
    state.cancel("u2", "w2")
    state.workflow("u0", "w0")
    for status in (None, WorkflowStatus.succeeded):
        state.list_workflows("u0", status, None, 10)
        state.list_workflows("u0", status, "w3", 10)
    state.forget_old_idempotency_keys()
    store.events_after("w0", 1)
    store.user_events_after("u0", 2)
    store.feed_after(3)
    store.last_event_id()
    SchedulerState(store, max_active_users=2, clock=Clock()).recover()
    keys = ApiKeyStore(db)
    trace(keys._db, statements)
    _, secret = keys.create("u0")
    keys.user_of(hash_key(secret))
    keys.revoke(keys.list_keys()[0].key_id)
    return statements


def plan(connection: sqlite3.Connection, statement: str) -> list[str]:
    return [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {statement}")]


def growing_steps(query: str, steps: list[str]) -> list[str]:
    """The steps whose cost grows with everyone's rows: full scans, and a query for one user's rows
    that does not look them up by user first (by status alone it would walk every user's)."""
    grows = [step for step in steps if FULL_SCAN.match(step)]
    if re.search(r"WHERE user_id = ", query) and "(user_id=" not in steps[0]:
        grows.append(steps[0])
    return grows


def test_no_query_reads_a_whole_table(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    statements = run_workload(db)
    queries = {s for s in statements if re.match(r"\s*(SELECT|UPDATE|DELETE)", s, re.IGNORECASE)}
    assert any("FROM api_keys" in q for q in queries) and any("FROM events" in q for q in queries)
    connection = sqlite3.connect(db)
    found = {query: steps for query in sorted(queries) if (steps := growing_steps(query, plan(connection, query)))}
    # The operator's `wfsched keys list` reads every key, by design; nothing else may.
    assert all("FROM api_keys ORDER BY created_at" in query for query in found), found
