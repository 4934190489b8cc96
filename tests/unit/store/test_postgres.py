"""What only the PostgreSQL database does: processes that set up one new database at once, and
connections the server drops."""

from __future__ import annotations

import psycopg
import pytest

from tests.support.postgres import PostgresServer
from tests.support.threads import errors_at_once
from wfsched.config import PostgresUrl
from wfsched.models.state import WorkflowRecord
from wfsched.store.database import open_database
from wfsched.store.keys import ApiKeyStore, hash_key
from wfsched.store.runs import SqlRunStore


def test_stores_setting_up_a_new_database_at_once_do_not_fail(postgres: PostgresServer) -> None:
    # The scheduler (runs and keys) and the progress fan-out set up the same database at every
    # first start; PostgreSQL's CREATE TABLE IF NOT EXISTS can fail when another runs beside it.
    for _ in range(5):
        url = postgres.new_database()

        def open_stores(url: PostgresUrl = url) -> None:
            SqlRunStore(url).close()
            ApiKeyStore(url).close()

        assert errors_at_once(open_stores) == []


def test_connections_the_server_dropped_are_made_again(postgres: PostgresServer) -> None:
    url = postgres.new_database()
    runs, keys = SqlRunStore(url), ApiKeyStore(url)
    _, key = keys.create("lab-a")
    postgres.drop_connections(url)
    # Reads, and a save that finds its connection gone before it began, simply work.
    assert runs.list_workflows("u", None, None, 10) == []
    assert keys.user_of(hash_key(key)) == "lab-a"
    postgres.drop_connections(url)
    runs.save([WorkflowRecord(workflow_id="w", user_id="u", name="n", created_at=1.0)])
    assert runs.get_workflow("w") is not None


def test_a_connection_dropped_inside_a_transaction_fails_it_whole(postgres: PostgresServer) -> None:
    url = postgres.new_database()
    SqlRunStore(url).close()  # the schema
    database = open_database(url)
    add = "INSERT INTO workflows (workflow_id, user_id, name, status, created_at) VALUES (:id, 'u', 'n', 'queued', 1)"
    with pytest.raises(psycopg.OperationalError), database.transaction():
        database.execute(add, {"id": "w1"})
        postgres.drop_connections(url)
        database.execute(add, {"id": "w2"})  # not on a new connection, outside the transaction
    assert database.fetch("SELECT workflow_id FROM workflows") == []
    with database.transaction():  # the next one connects again
        database.execute(add, {"id": "w3"})
    assert database.fetch("SELECT workflow_id FROM workflows") == [{"workflow_id": "w3"}]
