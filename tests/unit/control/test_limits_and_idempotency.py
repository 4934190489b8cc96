"""Per-user submission limits and Idempotency-Key, in the scheduler's state over a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.control.test_scheduler_state import Clock, jobs
from wfsched.control.quota import SubmitLimits
from wfsched.control.scheduler_state import SchedulerState
from wfsched.exceptions import IdempotencyKeyReusedError, QuotaExceededError
from wfsched.models.state import WorkflowStatus
from wfsched.store.runs import SqlRunStore


def make_state(db: Path, clock: Clock, **limits: int) -> SchedulerState:
    return SchedulerState(SqlRunStore(db), max_active_users=1, clock=clock, limits=SubmitLimits(**limits))


def test_submissions_per_minute_are_limited_per_user_and_say_when_to_retry(tmp_path: Path) -> None:
    clock = Clock()
    state = make_state(tmp_path / "db", clock, per_minute=3)
    for i in range(3):
        state.submit(f"a{i}", "alice", "n", jobs(f"a{i}", [("j", "m", [])]))
    with pytest.raises(QuotaExceededError, match="3 workflows in the last minute") as refused:
        state.submit("a3", "alice", "n", jobs("a3", [("j", "m", [])]))
    assert 59 < refused.value.retry_after_s <= 60
    assert state.store.get_workflow("a3") is None  # nothing of a refused submission is kept
    state.submit("b0", "bob", "n", jobs("b0", [("j", "m", [])]))  # others are not limited by alice
    clock.now += 60
    state.submit("a3", "alice", "n", jobs("a3", [("j", "m", [])]))


def test_queued_workflows_per_user_are_limited(tmp_path: Path) -> None:
    state = make_state(tmp_path / "db", Clock(), queued_per_user=2)
    state.submit("w0", "active", "n", jobs("w0", [("j", "m", [])]))
    for i in range(2):
        record, _ = state.submit(f"a{i}", "alice", "n", jobs(f"a{i}", [("j", "m", [])]))
        assert record.status == WorkflowStatus.queued
    with pytest.raises(QuotaExceededError, match="2 workflows waiting"):
        state.submit("a2", "alice", "n", jobs("a2", [("j", "m", [])]))
    state.cancel("alice", "a0")
    state.submit("a2", "alice", "n", jobs("a2", [("j", "m", [])]))


def test_the_same_key_and_body_get_the_first_answer_even_after_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    state = make_state(tmp_path / "db", clock)
    state.submit("w0", "active", "n", jobs("w0", [("j", "m", [])]))
    first, _ = state.submit("w1", "alice", "n", jobs("w1", [("j", "m", [])]), ("key-1", "sha-a"))
    assert (first.status, first.queue_position) == (WorkflowStatus.queued, 1)
    again, outcome = state.submit("w2", "alice", "n", jobs("w2", [("j", "m", [])]), ("key-1", "sha-a"))
    assert (again.workflow_id, again.status, again.queue_position) == ("w1", WorkflowStatus.queued, 1)
    assert outcome.commands == [] and state.store.get_workflow("w2") is None
    restarted = make_state(tmp_path / "db", clock)
    restarted.recover()
    assert restarted.submit("w3", "alice", "n", jobs("w3", [("j", "m", [])]), ("key-1", "sha-a"))[0].workflow_id == "w1"
    with pytest.raises(IdempotencyKeyReusedError, match="key-1"):
        restarted.submit("w4", "alice", "n", jobs("w4", [("j", "m", [])]), ("key-1", "sha-b"))
    # Keys are per user: bob's key-1 is his own.
    assert restarted.submit("w5", "bob", "n", jobs("w5", [("j", "m", [])]), ("key-1", "sha-b"))[0].workflow_id == "w5"


def test_a_key_is_forgotten_after_its_lifetime(tmp_path: Path) -> None:
    clock = Clock()
    state = make_state(tmp_path / "db", clock)
    state.submit("w1", "alice", "n", jobs("w1", [("j", "m", [])]), ("k", "sha-a"))
    clock.now += 86_400 + 1
    assert state.submit("w2", "alice", "n", jobs("w2", [("j", "m", [])]), ("k", "sha-b"))[0].workflow_id == "w2"
    clock.now += 86_400 + 1
    state.forget_old_idempotency_keys()
    assert state.store.get_idempotent("alice", "k") is None


def test_a_repeat_does_not_count_against_the_rate(tmp_path: Path) -> None:
    state = make_state(tmp_path / "db", Clock(), per_minute=1)
    state.submit("w1", "alice", "n", jobs("w1", [("j", "m", [])]), ("k", "sha"))
    for i in range(5):
        assert state.submit(f"r{i}", "alice", "n", jobs(f"r{i}", [("j", "m", [])]), ("k", "sha"))[0].workflow_id == "w1"
