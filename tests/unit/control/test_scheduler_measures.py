"""What the scheduler's changes tell the metrics: admission waits, job ends with their overhead, gauges."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.control.test_scheduler_state import Clock, jobs
from wfsched.control.messages import JobReport, ProgressReport
from wfsched.control.scheduler_state import Admitted, JobEnded, SchedulerState
from wfsched.models.state import JobStatus


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(tmp_path: Path, clock: Clock) -> Iterator[SchedulerState]:
    from wfsched.store.runs import SqlRunStore

    store = SqlRunStore(tmp_path / "runs.db")
    yield SchedulerState(store, max_active_users=1, clock=clock)
    store.close()


def test_admission_waits_are_measured_when_a_slot_frees(state: SchedulerState, clock: Clock) -> None:
    _, first = state.submit("w1", "alice", "n", jobs("w1", [("a", "m", [])]))
    assert first.measures == [Admitted("alice", pytest.approx(0.001))]  # type: ignore[arg-type]
    _, queued = state.submit("w2", "bob", "n", jobs("w2", [("a", "m", [])]))
    assert queued.measures == []
    clock.now += 30
    ended = state.apply_reports([JobReport("w1", "a", JobStatus.succeeded, clock.now - 2, clock.now, {}, None)])
    (admitted,) = [m for m in ended.measures if isinstance(m, Admitted)]
    assert admitted.user_id == "bob" and admitted.wait_s == pytest.approx(30, abs=0.1)


def test_a_job_end_carries_its_duration_overhead_and_error_class(state: SchedulerState) -> None:
    record, _ = state.submit("w", "alice", "n", jobs("w", [("a", "m", []), ("b", "m", [])]))
    assert record.admitted_at is not None
    admitted_at = record.admitted_at
    outcome = state.apply_reports(
        [
            JobReport(
                "w", "a", JobStatus.failed, admitted_at + 0.05, admitted_at + 5.05, None, "boom", "slide_read_error"
            )
        ]
    )
    (ended,) = [m for m in outcome.measures if isinstance(m, JobEnded)]
    assert (ended.user_id, ended.job_type, ended.status, ended.error_type) == (
        "alice",
        "t",
        "failed",
        "slide_read_error",
    )
    assert ended.duration_s == pytest.approx(5.0)
    assert ended.overhead_s == pytest.approx(0.05)  # admitted → started
    # b may start only once a ended (branch order): its overhead counts from a's end.
    outcome = state.apply_reports(
        [JobReport("w", "b", JobStatus.succeeded, admitted_at + 5.08, admitted_at + 6, {}, None)]
    )
    (ended,) = [m for m in outcome.measures if isinstance(m, JobEnded)]
    assert ended.overhead_s == pytest.approx(0.03)


def test_gauges_count_queues_running_jobs_and_stalls(state: SchedulerState, clock: Clock) -> None:
    state.submit("w1", "alice", "n", jobs("w1", [("a", "m", []), ("b", "x", [])]))
    state.submit("w2", "bob", "n", jobs("w2", [("a", "m", [])]))
    state.submit("w3", "bob", "n", jobs("w3", [("a", "m", [])]))
    clock.now += 10
    state.apply_reports([ProgressReport("w1", "a", 1, 4)])
    clock.now += 5
    gauges = state.gauges()
    assert gauges.queued == {"alice": 0, "bob": 2} and gauges.admitted == {"alice": 1, "bob": 0}
    assert (gauges.active_users, gauges.active_users_limit) == (1, 1)
    assert gauges.running == {"t": 2}
    # b has reported nothing since its start 15 s ago; a reported progress 5 s ago: the longest counts.
    assert gauges.stalled_s == {"t": pytest.approx(15, abs=0.1)}
