"""The scheduler's logic over a real SQLite store, without Ray: dispatch, failure, cancel, recovery."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wfsched.control.messages import JobReport, ProgressReport, StartJob, StopJob
from wfsched.control.scheduler_state import SchedulerState
from wfsched.exceptions import ConflictError, InvalidRequestError, NotFoundError
from wfsched.models.event import EventType
from wfsched.models.state import JobRecord, JobStatus, WorkflowStatus
from wfsched.store.runs import SqlRunStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture
def state(db: Path) -> Iterator[SchedulerState]:
    store = SqlRunStore(db)
    yield SchedulerState(store, max_active_users=2, clock=Clock())
    store.close()


def jobs(workflow_id: str, spec: list[tuple[str, str, list[str]]]) -> list[JobRecord]:
    return [
        JobRecord(workflow_id=workflow_id, job_id=j, index=i, branch=b, job_type="t", image_path="/x", depends_on=d)
        for i, (j, b, d) in enumerate(spec)
    ]


def started(commands: list[object]) -> list[str]:
    return [c.job.job_id for c in commands if isinstance(c, StartJob)]


def finish(state: SchedulerState, wf: str, job_id: str, status: JobStatus = JobStatus.succeeded) -> list[str]:
    error = None if status == "succeeded" else "x"
    outcome = state.apply_reports([JobReport(wf, job_id, status, 1.0, 2.0, {"ok": True}, error)])
    return started(outcome.commands)


def test_branches_run_in_parallel_and_in_order(state: SchedulerState) -> None:
    record, outcome = state.submit("w", "alice", "n", jobs("w", [("a", "b1", []), ("b", "b1", []), ("c", "b2", [])]))
    assert record.status == WorkflowStatus.running
    assert started(outcome.commands) == ["a", "c"]
    assert finish(state, "w", "c") == []
    assert finish(state, "w", "a") == ["b"]
    assert finish(state, "w", "b") == []
    record, stored = state.workflow("alice", "w")
    assert record.status == WorkflowStatus.succeeded
    assert all(job.status == JobStatus.succeeded for job in stored)


def test_cross_branch_dependency_waits(state: SchedulerState) -> None:
    _, outcome = state.submit("w", "u", "n", jobs("w", [("a", "b1", []), ("b", "b2", ["a"])]))
    assert started(outcome.commands) == ["a"]
    assert finish(state, "w", "a") == ["b"]


def test_failure_skips_dependents_only(state: SchedulerState) -> None:
    spec = [("a", "b1", []), ("b", "b1", ["a"]), ("c", "b1", []), ("d", "b2", ["b"]), ("e", "b2", [])]
    _, outcome = state.submit("w", "u", "n", jobs("w", spec))
    assert started(outcome.commands) == ["a"]  # d needs b, which needs a: d must not start yet
    # d waits on b; e waits behind d in branch order.
    assert finish(state, "w", "a", JobStatus.failed) == ["c", "e"]
    _, stored = state.workflow("u", "w")
    status = {j.job_id: j.status for j in stored}
    assert status["b"] == status["d"] == JobStatus.skipped
    finish(state, "w", "c")
    finish(state, "w", "e")
    record, _ = state.workflow("u", "w")
    assert record.status == WorkflowStatus.failed


def test_a_repeated_report_changes_nothing(state: SchedulerState) -> None:
    state.submit("w", "u", "n", jobs("w", [("a", "m", []), ("b", "m", [])]))
    assert finish(state, "w", "a") == ["b"]
    assert finish(state, "w", "a") == []


def test_admission_limit_queue_positions_and_events(state: SchedulerState, db: Path) -> None:
    for user in ("u1", "u2", "u3", "u4"):
        _record, _ = state.submit(f"w-{user}", user, "n", jobs(f"w-{user}", [("a", "m", [])]))
    assert state.workflow("u3", "w-u3")[0].queue_position == 1
    assert state.workflow("u4", "w-u4")[0].queue_position == 2
    finish(state, "w-u1", "a")
    assert state.workflow("u3", "w-u3")[0].status == WorkflowStatus.running
    assert state.workflow("u4", "w-u4")[0].queue_position == 1  # answers show the new place at once
    assert state.line_moved
    # The news of it goes in a transaction of its own, after the starts of the admitted workflow.
    assert len(SqlRunStore(db).events_after("w-u4", 0)) == 1
    announced = state.announce_places()
    assert [(user, e.workflow_id, e.data["queue_position"]) for user, e in announced.events] == [("u4", "w-u4", 1)]
    assert not state.line_moved and state.announce_places().events == []
    events = SqlRunStore(db).events_after("w-u4", 0)
    assert [(e.type, e.data.get("queue_position")) for e in events] == [
        (EventType.workflow_queued, 2),
        (EventType.workflow_queued, 1),
    ]
    assert [e.seq for e in events] == [1, 2]


def test_a_queued_event_goes_only_to_workflows_whose_place_changed(state: SchedulerState, db: Path) -> None:
    """A user's later queued workflow gets its own place; the others in line hear nothing until
    the line moves (this was a pass over every queued workflow on each submission)."""
    for user in ("u1", "u2", "u3", "u4"):  # the limit is 2: u3 waits first, u4 second
        state.submit(f"w-{user}", user, "n", jobs(f"w-{user}", [("a", "m", [])]))
    state.submit("w-u3-again", "u3", "n", jobs("w-u3-again", [("a", "m", [])]))
    store = SqlRunStore(db)
    assert [e.data["queue_position"] for e in store.events_after("w-u3-again", 0)] == [1]
    assert [e.data["queue_position"] for e in store.events_after("w-u4", 0)] == [2]
    finish(state, "w-u1", "a")  # u3 takes the slot with both workflows; u4 moves up
    state.announce_places()
    assert state.workflow("u3", "w-u3-again")[0].status == WorkflowStatus.running
    assert [e.data["queue_position"] for e in store.events_after("w-u4", 0)] == [2, 1]
    assert state.workflow("u4", "w-u4")[0].queue_position == 1


def test_cancel_running_and_queued(state: SchedulerState) -> None:
    state.submit("w1", "u1", "n", jobs("w1", [("a", "m", []), ("b", "m", [])]))
    state.submit("w2", "u2", "n", jobs("w2", [("a", "m", [])]))
    state.submit("w3", "u3", "n", jobs("w3", [("a", "m", [])]))
    record, outcome = state.cancel("u1", "w1")
    # The running job, and the next of its branch that its lane may hold as a continuation.
    assert outcome.commands == [StopJob("w1", "m", "a"), StopJob("w1", "m", "b")]
    assert record.status == WorkflowStatus.running  # until the running job stops
    assert finish(state, "w1", "a", JobStatus.cancelled) == ["a"]  # w3 takes the freed slot
    record, stored = state.workflow("u1", "w1")
    assert record.status == WorkflowStatus.cancelled
    assert [j.status for j in stored] == [JobStatus.cancelled, JobStatus.cancelled]
    assert state.workflow("u3", "w3")[0].status == WorkflowStatus.running  # the freed slot
    with pytest.raises(ConflictError):
        state.cancel("u1", "w1")


def test_another_user_gets_not_found(state: SchedulerState) -> None:
    state.submit("w", "alice", "n", jobs("w", [("a", "m", [])]))
    for action in (lambda: state.workflow("bob", "w"), lambda: state.cancel("bob", "w")):
        with pytest.raises(NotFoundError):
            action()
    assert state.list_workflows("bob", None, None, 10) == []
    with pytest.raises(InvalidRequestError, match="cursor"):
        state.list_workflows("bob", None, "w", 10)


def test_the_list_cursor_is_the_users_own_workflow_not_a_global_count(state: SchedulerState) -> None:
    """`next_cursor` was the global submission number: anyone could count everyone's submissions."""
    for i in range(3):
        state.submit(f"w{i}", "alice", "n", jobs(f"w{i}", [("a", "m", [])]))
    state.submit("x", "bob", "n", jobs("x", [("a", "m", [])]))
    first = state.list_workflows("alice", None, None, 2)
    assert [r.workflow_id for r in first] == ["w2", "w1"]
    assert [r.workflow_id for r in state.list_workflows("alice", None, first[-1].workflow_id, 2)] == ["w0"]


def test_recovery_resends_running_jobs_and_keeps_finished_ones(db: Path) -> None:
    first = SchedulerState(SqlRunStore(db), max_active_users=1, clock=Clock())
    first.submit("w1", "u1", "n", jobs("w1", [("a", "m", []), ("b", "m", []), ("c", "m", [])]))
    first.submit("w2", "u2", "n", jobs("w2", [("a", "m", [])]))
    finish(first, "w1", "a")
    second = SchedulerState(SqlRunStore(db), max_active_users=1, clock=Clock())
    outcome = second.recover()
    assert started(outcome.commands) == ["b"]
    assert second.workflow("u2", "w2")[0].queue_position == 1
    assert finish(second, "w1", "b") == ["c"]
    finish(second, "w1", "c")
    assert second.workflow("u2", "w2")[0].status == WorkflowStatus.running


def test_submit_is_idempotent_on_workflow_id(state: SchedulerState) -> None:
    state.submit("w", "u", "n", jobs("w", [("a", "m", [])]))
    record, outcome = state.submit("w", "u", "n", jobs("w", [("a", "m", [])]))
    assert outcome.commands == [] and record.workflow_id == "w"
    assert len(state.list_workflows("u", None, None, 10)) == 1


def test_a_burst_of_reports_is_one_transaction_in_order(state: SchedulerState, db: Path) -> None:
    state.submit("w", "u", "n", jobs("w", [("a", "b1", []), ("b", "b1", []), ("c", "b2", [])]))
    outcome = state.apply_reports(
        [
            ProgressReport("w", "a", 1, 2),
            ProgressReport("w", "a", 2, 2),
            JobReport("w", "a", JobStatus.succeeded, 1.0, 2.0, {}, None),
            ProgressReport("w", "a", 3, 3),  # after its end: dropped
            JobReport("w", "c", JobStatus.succeeded, 1.0, 2.0, {}, None),
        ]
    )
    assert started(outcome.commands) == ["b"]
    kinds = [(e.type.value, e.data.get("job_id"), e.data.get("done")) for _, e in outcome.events]
    assert kinds == [
        ("job.progress", "a", 1),
        ("job.progress", "a", 2),
        ("job.state", "a", None),
        ("job.state", "b", None),
        ("job.state", "c", None),
    ]
    assert [e.seq for _, e in outcome.events] == sorted(e.seq for _, e in outcome.events)


def test_a_start_carries_the_next_job_of_its_branch_when_only_order_holds_it(state: SchedulerState) -> None:
    spec = [("a", "m", []), ("b", "m", []), ("c", "m", ["x"]), ("x", "other", [])]
    _, outcome = state.submit("w", "u", "n", jobs("w", spec))
    starts = {c.job.job_id: c for c in outcome.commands if isinstance(c, StartJob)}
    assert starts["a"].then is not None and starts["a"].then.job.job_id == "b"
    assert starts["x"].then is None
    after_a = state.apply_reports([JobReport("w", "a", JobStatus.failed, 1.0, 2.0, None, "x")]).commands
    (start_b,) = [c for c in after_a if isinstance(c, StartJob)]
    assert start_b.job.job_id == "b" and start_b.then is None  # c waits for x too


def handed_on(commands: list[object]) -> dict[str, StartJob]:
    """The continuations the commands hand on, by the job whose lane gets them."""
    return {c.job.job_id: c.then for c in commands if isinstance(c, StartJob) and c.then is not None}


def test_a_job_whose_last_dependency_succeeds_while_its_predecessor_runs_is_handed_to_that_lane(
    state: SchedulerState,
) -> None:
    spec = [("a", "m", []), ("b", "m", ["x"]), ("x", "other", [])]
    _, outcome = state.submit("w", "u", "n", jobs("w", spec))
    assert handed_on(outcome.commands) == {}
    after_x = state.apply_reports([JobReport("w", "x", JobStatus.succeeded, 1.0, 2.0, {"n": 1}, None)]).commands
    # `a` again (its lane only takes the continuation), carrying `b` with the result `b` reads.
    assert started(after_x) == ["a"]
    following = handed_on(after_x)["a"]
    assert following.job.job_id == "b" and following.then is None
    assert [(u.job_id, u.result and u.result.fields) for u in following.upstream] == [("x", {"artifacts": [], "n": 1})]
    # The scheduler starts `b` too when it hears that `a` ended: the lane takes it as the same start.
    assert finish(state, "w", "a") == ["b"]


def test_a_job_whose_dependencies_succeeded_before_its_predecessor_started_comes_with_that_start(
    state: SchedulerState,
) -> None:
    spec = [("a1", "m", []), ("a2", "m", []), ("b", "m", ["x"]), ("x", "other", [])]
    _, outcome = state.submit("w", "u", "n", jobs("w", spec))
    assert handed_on(outcome.commands)["a1"].job.job_id == "a2"
    assert finish(state, "w", "x") == []  # b's predecessor a2 has not started: nothing to hand on yet
    after_a1 = state.apply_reports([JobReport("w", "a1", JobStatus.succeeded, 1.0, 2.0, {}, None)]).commands
    assert handed_on(after_a1)["a2"].job.job_id == "b"


def test_a_failed_dependency_hands_nothing_on(state: SchedulerState) -> None:
    spec = [("a", "m", []), ("b", "m", ["x"]), ("x", "other", [])]
    state.submit("w", "u", "n", jobs("w", spec))
    outcome = state.apply_reports([JobReport("w", "x", JobStatus.failed, 1.0, 2.0, None, "boom")])
    assert started(outcome.commands) == [] and handed_on(outcome.commands) == {}
    _, stored = state.workflow("u", "w")
    assert {j.job_id: j.status for j in stored}["b"] == JobStatus.skipped


def test_reconciliation_restarts_the_settled_running_jobs_no_lane_knows(state: SchedulerState) -> None:
    _, outcome = state.submit("w", "u", "n", jobs("w", [("a", "b1", []), ("b", "b1", []), ("c", "b2", [])]))
    assert started(outcome.commands) == ["a", "c"]
    settled = time.time() + 60
    restarts = state.restarts_for_lost_jobs({("w", "a")}, started_before=settled)
    assert [(c.job.job_id, c.then) for c in restarts] == [("c", None)]
    # A lost `a` comes back with the next job of its branch handed along, as at its first start.
    (again,) = state.restarts_for_lost_jobs({("w", "c")}, started_before=settled)
    assert again.job.job_id == "a" and again.then is not None and again.then.job.job_id == "b"
    # Jobs started since the cut-off may still be on their way to a lane; finished ones are never lost.
    assert state.restarts_for_lost_jobs(set(), started_before=0) == []
    finish(state, "w", "c")
    assert state.restarts_for_lost_jobs({("w", "a")}, started_before=settled) == []


def test_the_request_id_stays_on_the_workflow_its_first_event_and_its_job_starts(
    state: SchedulerState, db: Path
) -> None:
    record, outcome = state.submit("w", "u", "n", jobs("w", [("a", "m", []), ("b", "m", [])]), request_id="req-1")
    assert record.request_id == "req-1" and state.workflow("u", "w")[0].request_id == "req-1"
    (command,) = outcome.commands
    assert isinstance(command, StartJob) and command.request_id == "req-1"
    assert command.then is not None  # the continuation runs under the same request id (executor)
    events = SqlRunStore(db).events_after("w", 0)
    assert events[0].data["request_id"] == "req-1"
    assert all("request_id" not in e.data for e in events[1:])
    for user in ("v1", "v2"):  # the limit is 2 active users: a queued workflow's first event carries it too
        state.submit(f"w-{user}", user, "n", jobs(f"w-{user}", [("a", "m", [])]), request_id=f"req-{user}")
    (queued,) = SqlRunStore(db).events_after("w-v2", 0)
    assert queued.type == EventType.workflow_queued and queued.data["request_id"] == "req-v2"
    recovered = SchedulerState(SqlRunStore(db), max_active_users=2, clock=Clock())
    assert [c.request_id for c in recovered.recover().commands if isinstance(c, StartJob)] == ["req-1", "req-v1"]


def test_a_job_that_depends_on_its_branch_predecessor_comes_with_its_start(state: SchedulerState) -> None:
    spec = [("a", "m", []), ("b", "m", ["a", "x"]), ("x", "other", [])]
    _, outcome = state.submit("w", "u", "n", jobs("w", spec))
    assert handed_on(outcome.commands) == {}  # x has not succeeded yet
    after_x = state.apply_reports([JobReport("w", "x", JobStatus.succeeded, 1.0, 2.0, {}, None)]).commands
    following = handed_on(after_x)["a"]
    # The lane starts it only if `a` succeeds (JobExecutor); it goes with the upstream it reads.
    assert following.job.job_id == "b" and [u.job_id for u in following.upstream] == ["a", "x"]


def test_new_places_are_announced_a_few_users_at_a_time_when_asked(state: SchedulerState) -> None:
    """The limit is 2: u3, u4 and u5 wait, two workflows each; u1's end admits u3."""
    for user in ("u1", "u2", "u3", "u4", "u5"):
        for n in (1, 2):
            state.submit(f"w-{user}-{n}", user, "n", jobs(f"w-{user}-{n}", [("a", "m", [])]))
    finish(state, "w-u1-1", "a")
    finish(state, "w-u1-2", "a")
    assert state.line_moved
    first = state.announce_places(most=1)  # the first user's workflows, whole: u4 is next now
    assert [(e.workflow_id, e.data["queue_position"]) for _, e in first.events] == [("w-u4-1", 1), ("w-u4-2", 1)]
    assert state.line_moved
    rest = state.announce_places(most=1)
    assert [(e.workflow_id, e.data["queue_position"]) for _, e in rest.events] == [("w-u5-1", 2), ("w-u5-2", 2)]
    assert not state.line_moved and state.announce_places(most=1).events == []
