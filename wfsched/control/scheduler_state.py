"""The scheduler's logic: admission, dispatch, completion, cancel, recovery. No Ray here.

Every public mutation commits its changes (records and events) to the store in one transaction
before it returns, then hands the caller the commands to carry out and the events to publish.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wfsched.control.admission import AdmissionState
from wfsched.control.messages import Command, JobReport, ProgressReport, Report, StartJob, StopJob
from wfsched.control.quota import SubmissionQuota, SubmitLimits
from wfsched.control.run import WorkflowRun
from wfsched.exceptions import ConflictError, IdempotencyKeyReusedError, InvalidRequestError, NotFoundError
from wfsched.models.event import Event, EventType
from wfsched.models.state import (
    IdempotentSubmission,
    JobRecord,
    JobStatus,
    WorkflowRecord,
    WorkflowStatus,
)
from wfsched.store.base import RunStore

DEFAULT_LIMITS = SubmitLimits()

IdempotencyKey = tuple[str, str]
"""A client's Idempotency-Key and the sha256 of the body it came with."""


@dataclass(frozen=True)
class Admitted:
    """A workflow took an active-user slot `wait_s` after its submission."""

    user_id: str
    wait_s: float


@dataclass(frozen=True)
class JobEnded:
    """A job that ran has ended. `overhead_s`: from when it could start to its start in a lane."""

    user_id: str
    job_type: str
    status: JobStatus
    duration_s: float
    overhead_s: float | None
    error_type: str | None


Measure = Admitted | JobEnded
"""What a change tells the metrics (observe/metrics.py), beside its events."""


@dataclass(frozen=True)
class Gauges:
    """The scheduler's state now, as the gauges of observe/metrics.py read it."""

    queued: dict[str, int]
    """Queued workflows per user with unfinished work (0 for those with all of it admitted)."""
    admitted: dict[str, int]
    active_users: int
    active_users_limit: int
    running: dict[str, int]
    """Running jobs per job type."""
    stalled_s: dict[str, float]
    """Per job type: the longest a running job has gone without progress (or since its start)."""


@dataclass
class Outcome:
    """What a mutation asks of the actor shell: commands to send, events to publish, measures to record."""

    commands: list[Command] = field(default_factory=list)
    events: list[tuple[str, Event]] = field(default_factory=list)
    """Each with its owner's user id."""
    measures: list[Measure] = field(default_factory=list)


@dataclass
class _Changes:
    workflows: dict[str, WorkflowRecord] = field(default_factory=dict)
    jobs: dict[tuple[str, str], JobRecord] = field(default_factory=dict)
    events: list[tuple[str, Event]] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    idempotent: list[IdempotentSubmission] = field(default_factory=list)
    measures: list[Measure] = field(default_factory=list)


class SchedulerState:
    """The only writer of workflow and job state."""

    def __init__(
        self,
        store: RunStore,
        max_active_users: int,
        clock: Callable[[], float] = time.time,
        limits: SubmitLimits = DEFAULT_LIMITS,
        idempotency_ttl_s: float = 86_400.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.admission = AdmissionState(max_active_users)
        self.quota = SubmissionQuota(limits, clock)
        self.idempotency_ttl_s = idempotency_ttl_s
        self.runs: dict[str, WorkflowRun] = {}
        self._seq: dict[str, int] = {}
        # Each waiting user's place in line, as last announced (their queued workflows share it).
        self._places: dict[str, int] = {}
        # When each running job last reported progress (or started): the stalled gauge.
        self._progress_at: dict[tuple[str, str], float] = {}

    # ---- recovery ---------------------------------------------------------------------------

    def recover(self) -> Outcome:
        """Load every unfinished workflow; re-send its running jobs and start what may start."""
        changes = _Changes()
        loaded = self.store.load_unfinished()
        for record, jobs in loaded:
            run = WorkflowRun(record, jobs)
            self.runs[record.workflow_id] = run
            self._seq[record.workflow_id] = self.store.last_event_seq(record.workflow_id)
            if record.status == WorkflowStatus.running:
                self.admission.restore_admitted(record.user_id)
        for record, _ in loaded:
            if record.status == WorkflowStatus.queued:
                for workflow_id in self.admission.restore_queued(record.workflow_id, record.user_id):
                    self._admit(self.runs[workflow_id], changes)
        for run in list(self.runs.values()):
            for job in run.running():
                changes.commands.append(self.start_command(run, job))
            self._advance(run, changes)
        # Places in line were announced before the restart; only later changes are news.
        self._places = self.admission.places()
        return self._commit(changes)

    # ---- mutations --------------------------------------------------------------------------

    def submit(
        self,
        workflow_id: str,
        user_id: str,
        name: str,
        jobs: list[JobRecord],
        idempotency: IdempotencyKey | None = None,
        request_id: str | None = None,
    ) -> tuple[WorkflowRecord, Outcome]:
        """Accept a validated workflow; idempotent on workflow_id (a retried call returns the same).

        With an idempotency key (the client's key and the body's hash), a repeat within the key's
        lifetime gets the first answer again, and the same key with another body is refused.
        Over a per-user limit it raises QuotaExceededError and accepts nothing. `request_id` (the
        submission's X-Request-ID) stays on the record and in the workflow's first event.
        """
        existing = self.store.get_workflow(workflow_id)
        if existing is not None:
            return self._with_position(existing), Outcome()
        if idempotency is not None:
            first = self._first_answer(user_id, idempotency)
            if first is not None:
                return first, Outcome()
        self.quota.check(user_id, self.admission.queued_of(user_id))
        self.quota.record(user_id)
        record = WorkflowRecord(
            workflow_id=workflow_id, user_id=user_id, name=name, created_at=self.clock(), request_id=request_id
        )
        run = WorkflowRun(record, jobs)
        self.runs[workflow_id] = run
        self._seq[workflow_id] = 0
        changes = _Changes()
        changes.workflows[workflow_id] = record
        changes.jobs.update({(workflow_id, j.job_id): j for j in jobs})
        if self.admission.submit(workflow_id, user_id):
            self._admit(run, changes)
        self._refresh_positions(changes, submitted=run)
        answer = self._with_position(record)
        if idempotency is not None:
            key, body_sha256 = idempotency
            changes.idempotent.append(
                IdempotentSubmission(
                    user_id=user_id,
                    key=key,
                    body_sha256=body_sha256,
                    workflow_id=workflow_id,
                    status=answer.status,
                    queue_position=answer.queue_position,
                    created_at=self.clock(),
                )
            )
        outcome = self._commit(changes)
        return answer, outcome

    def _first_answer(self, user_id: str, idempotency: IdempotencyKey) -> WorkflowRecord | None:
        """The first answer to this user's key if it is still remembered; else None."""
        key, body_sha256 = idempotency
        first = self.store.get_idempotent(user_id, key)
        if first is None or first.created_at < self.clock() - self.idempotency_ttl_s:
            return None
        if first.body_sha256 != body_sha256:
            raise IdempotencyKeyReusedError(
                f"Idempotency-Key {key!r} was used for another submission: use a new key for a new workflow"
            )
        record = self.owned(user_id, first.workflow_id)
        return record.model_copy(update={"status": first.status, "queue_position": first.queue_position})

    def forget_old_idempotency_keys(self) -> None:
        """Drop first answers past their lifetime (they are ignored anyway; this bounds the table)."""
        self.store.forget_idempotent_before(self.clock() - self.idempotency_ttl_s)

    def apply_reports(self, reports: list[Report]) -> Outcome:
        """What lanes report, in their order, committed at once: a burst costs one transaction."""
        changes = _Changes()
        for report in reports:
            if isinstance(report, JobReport):
                self._job_finished(report, changes)
            else:
                self._job_progress(report, changes)
        return self._commit(changes)

    def _job_finished(self, report: JobReport, changes: _Changes) -> None:
        """A job's end; a repeated report of a finished job changes nothing."""
        run = self.runs.get(report.workflow_id)
        job = run.jobs.get(report.job_id) if run else None
        if run is None or job is None or job.status.finished:
            return
        self._progress_at.pop((report.workflow_id, report.job_id), None)
        ready_at = run.ready_at(job)
        changes.measures.append(
            JobEnded(
                run.user_id,
                job.job_type,
                report.status,
                duration_s=report.finished_at - report.started_at,
                overhead_s=None if ready_at is None else report.started_at - ready_at,
                error_type=report.error_type,
            )
        )
        for name, value in report.outcome().items():
            setattr(job, name, value)
        if report.status == JobStatus.succeeded and job.progress_total:
            job.progress_done = job.progress_total
        self._job_changed(run, job, changes)
        if job.status == JobStatus.succeeded:
            self._hand_on_dependents(run, job, changes)
        self._advance(run, changes)

    def _job_progress(self, report: ProgressReport, changes: _Changes) -> None:
        run = self.runs.get(report.workflow_id)
        job = run.jobs.get(report.job_id) if run else None
        if run is None or job is None or job.status != JobStatus.running:
            return
        if report.done > job.progress_done or report.total != job.progress_total:
            self._progress_at[(report.workflow_id, report.job_id)] = self.clock()
        job.progress_done, job.progress_total = report.done, report.total
        changes.jobs[(report.workflow_id, report.job_id)] = job
        data = {"job_id": job.job_id, "done": job.progress_done, "total": job.progress_total}
        self._event(run, EventType.job_progress, {**data, **_rate_and_eta(job, self.clock())}, changes)

    def cancel(self, user_id: str, workflow_id: str) -> tuple[WorkflowRecord, Outcome]:
        """Cancel: pending jobs never start, running ones are told to stop."""
        record = self.owned(user_id, workflow_id)
        run = self.runs.get(workflow_id)
        if run is None:
            raise ConflictError(f"workflow {workflow_id} already {record.status.value}")
        changes = _Changes()
        if run.record.status == WorkflowStatus.queued:
            self.admission.withdraw(workflow_id)
            self._refresh_positions(changes)
        running = run.running()
        for job in run.cancel_pending():
            self._job_changed(run, job, changes)
        for job in running:
            changes.commands.append(StopJob(workflow_id, job.branch, job.job_id))
            # Its lane may hold (or have just started) the next job as a continuation: stop that too.
            following = run.next_in_branch(job)
            if following is not None and following.status == JobStatus.cancelled:
                changes.commands.append(StopJob(workflow_id, following.branch, following.job_id))
        self._advance(run, changes)
        outcome = self._commit(changes)
        return self._with_position(run.record), outcome

    # ---- reads ------------------------------------------------------------------------------

    def workflow(self, user_id: str, workflow_id: str) -> tuple[WorkflowRecord, list[JobRecord]]:
        """The workflow and its jobs if the user owns it, else NotFoundError."""
        record = self.owned(user_id, workflow_id)
        return self._with_position(record), self.store.get_jobs(workflow_id)

    def list_workflows(
        self, user_id: str, status: WorkflowStatus | None, before: str | None, limit: int
    ) -> list[WorkflowRecord]:
        """The user's workflows, newest first, older than their workflow `before` if given.

        The cursor is a workflow id the user owns, not a position in everyone's submissions, so a
        page tells nobody how much others submit.
        """
        if before is not None:
            try:
                self.owned(user_id, before)
            except NotFoundError:
                raise InvalidRequestError(f"cursor {before!r} is not one this API gave out") from None
        return [self._with_position(record) for record in self.store.list_workflows(user_id, status, before, limit)]

    # ---- internals --------------------------------------------------------------------------

    def owned(self, user_id: str, workflow_id: str) -> WorkflowRecord:
        """The workflow if the user owns it; anyone else gets exactly what a missing one gives."""
        run = self.runs.get(workflow_id)
        record = run.record if run else self.store.get_workflow(workflow_id)
        if record is None or record.user_id != user_id:
            raise NotFoundError(f"no workflow {workflow_id!r}")
        return record

    def gauges(self) -> Gauges:
        """Counts over the unfinished workflows (all this state holds in memory)."""
        queued: dict[str, int] = {}
        admitted: dict[str, int] = {}
        running: dict[str, int] = {}
        stalled_s: dict[str, float] = {}
        now = self.clock()
        for run in self.runs.values():
            # Both counts for every user with unfinished work, so a tenant's queue reads 0, not nothing.
            queued.setdefault(run.user_id, 0)
            admitted.setdefault(run.user_id, 0)
            if run.record.status == WorkflowStatus.queued:
                queued[run.user_id] += 1
                continue  # no job of a queued workflow runs: at ten times the load, most of them
            admitted[run.user_id] += 1
            for job in run.running():
                running[job.job_type] = running.get(job.job_type, 0) + 1
                since = self._progress_at.get((run.workflow_id, job.job_id), job.started_at or now)
                stalled_s[job.job_type] = max(stalled_s.get(job.job_type, 0.0), now - since)
        return Gauges(
            queued=queued,
            admitted=admitted,
            active_users=len(self.admission.active_users),
            active_users_limit=self.admission.max_active_users,
            running=running,
            stalled_s=stalled_s,
        )

    def _with_position(self, record: WorkflowRecord) -> WorkflowRecord:
        position = self.admission.place(record.user_id) if record.status == WorkflowStatus.queued else None
        return record.model_copy(update={"queue_position": position})

    def _admit(self, run: WorkflowRun, changes: _Changes) -> None:
        run.record.status = WorkflowStatus.running
        run.record.admitted_at = self.clock()
        changes.workflows[run.workflow_id] = run.record
        changes.measures.append(Admitted(run.user_id, run.record.admitted_at - run.record.created_at))
        self._event(run, EventType.workflow_admitted, {"status": WorkflowStatus.running.value}, changes)
        self._advance(run, changes)

    def _advance(self, run: WorkflowRun, changes: _Changes) -> None:
        """Skip what can no longer run, start what may start, finish the workflow when it is done."""
        for job in run.skip_blocked():
            self._job_changed(run, job, changes)
        for job in run.startable():
            job.status = JobStatus.running
            job.started_at = self.clock()
            job.attempt += 1
            self._job_changed(run, job, changes)
            changes.commands.append(self.start_command(run, job))
        final = run.outcome()
        if final is not None and run.workflow_id in self.runs:
            self._finish(run, final, changes)

    def _finish(self, run: WorkflowRun, final: WorkflowStatus, changes: _Changes) -> None:
        was_admitted = run.record.status == WorkflowStatus.running
        run.record.status = final
        run.record.finished_at = self.clock()
        changes.workflows[run.workflow_id] = run.record
        data = {"status": final.value, "summary": run.summary()}
        self._event(run, EventType.workflow_finished, data, changes)
        del self.runs[run.workflow_id]
        self._seq.pop(run.workflow_id, None)
        if was_admitted:
            for workflow_id in self.admission.finish(run.user_id):
                self._admit(self.runs[workflow_id], changes)

    @property
    def line_moved(self) -> bool:
        """Places in line changed since they were announced (a workflow's end admitted others):
        `announce_places` has news."""
        return self._places != self.admission.places()

    def announce_places(self, most: int | None = None) -> Outcome:
        """A queued event to each waiting workflow whose user moved up in line since the places
        were last announced; with `most`, to the workflows of the users next in line until about
        that many events are made, and `line_moved` stays True while some are left.

        When a workflow's end admits a user, every other waiting user moves up, and each of their
        queued workflows gets an event: ~2,000 of them at ten times the seed's scale. They go in
        transactions of their own, which the scheduler runs once the admitted workflows' starts are
        out and between other calls, so that they hold up neither. Answers show the new place at once.
        """
        changes = _Changes()
        self._refresh_positions(changes, most=most)
        return self._commit(changes)

    def _refresh_positions(
        self, changes: _Changes, submitted: WorkflowRun | None = None, most: int | None = None
    ) -> None:
        """Send a queued event to every waiting workflow whose place in line changed, and to a
        just `submitted` one that waits. Only a user's place can change, so this costs the
        waiting users, plus the workflows of those who moved. With `most`, stops before the next
        user once that many events are made (`line_moved` says some are left)."""
        places = self.admission.places()
        for user_id, place in places.items():
            if self._places.get(user_id) != place:
                moved = [self.runs[workflow_id] for workflow_id in self.admission.queued(user_id)]
            elif submitted is not None and submitted.user_id == user_id:
                moved = [submitted]
            else:
                continue
            if most is not None and changes.events and len(changes.events) >= most:
                return
            for run in moved:
                self._event(run, EventType.workflow_queued, {"queue_position": place}, changes)
            self._places[user_id] = place
        self._places = places

    def _job_changed(self, run: WorkflowRun, job: JobRecord, changes: _Changes) -> None:
        changes.jobs[(run.workflow_id, job.job_id)] = job
        data: dict[str, Any] = {"job_id": job.job_id, "branch": job.branch, "status": job.status.value}
        if job.error:
            data["error"] = job.error
        self._event(run, EventType.job_state, data, changes)

    def _event(self, run: WorkflowRun, kind: EventType, data: dict[str, Any], changes: _Changes) -> None:
        self._seq[run.workflow_id] = self._seq.get(run.workflow_id, 0) + 1
        if self._seq[run.workflow_id] == 1 and run.record.request_id:
            data = {**data, "request_id": run.record.request_id}  # from the workflow to its log lines
        event = Event(
            workflow_id=run.workflow_id, seq=self._seq[run.workflow_id], type=kind, ts=self.clock(), data=data
        )
        changes.events.append((run.user_id, event))

    def settled_running(self, started_before: float) -> list[JobRecord]:
        """Running jobs started before `started_before`: by then their start has reached a lane."""
        return [
            job
            for run in self.runs.values()
            for job in run.running()
            if job.started_at is not None and job.started_at < started_before
        ]

    def restarts_for_lost_jobs(self, known: set[tuple[str, str]], started_before: float) -> list[StartJob]:
        """Start commands for the running jobs that no lane knows: their branch host restarted.

        `known` holds the (workflow id, job id) of the jobs the lanes were asked about and hold.
        Jobs started at or after `started_before` are left alone: their start may still be on its
        way to the lane.
        """
        return [
            self.start_command(self.runs[job.workflow_id], job)
            for job in self.settled_running(started_before)
            if (job.workflow_id, job.job_id) not in known
        ]

    def start_command(self, run: WorkflowRun, job: JobRecord, *, handing_on: bool = True) -> StartJob:
        """Start `job`; with the next job of its branch handed on when only `job` holds it back."""
        following = run.continuation(job) if handing_on else None
        return StartJob(
            user_id=run.user_id,
            job=job.model_copy(),
            upstream=[run.jobs[dep].model_copy() for dep in job.depends_on],
            then=None if following is None else self.start_command(run, following, handing_on=False),
            request_id=run.record.request_id,
        )

    def _hand_on_dependents(self, run: WorkflowRun, succeeded: JobRecord, changes: _Changes) -> None:
        """Jobs whose last dependency is `succeeded` and whose branch predecessor still runs: only
        that predecessor holds them back now, so its lane gets them as its continuation."""
        for job in run.jobs.values():
            if succeeded.job_id not in job.depends_on:
                continue
            previous = run.previous_in_branch(job)
            if previous is not None and previous.status == JobStatus.running and run.continuation(previous) is job:
                changes.commands.append(self.start_command(run, previous))

    def _commit(self, changes: _Changes) -> Outcome:
        self.store.save(changes.workflows.values(), changes.jobs.values(), changes.events, changes.idempotent)
        return Outcome(commands=changes.commands, events=changes.events, measures=changes.measures)


def _rate_and_eta(job: JobRecord, now: float) -> dict[str, float | None]:
    """Units per second since the job started, and the seconds left at that rate (None until known)."""
    elapsed_s = now - job.started_at if job.started_at is not None else 0.0
    if elapsed_s <= 0 or job.progress_done <= 0:
        return {"rate_per_s": None, "eta_s": None}
    rate = job.progress_done / elapsed_s
    return {"rate_per_s": round(rate, 3), "eta_s": round(max(0, job.progress_total - job.progress_done) / rate, 1)}
