"""One workflow's jobs as they run: which may start, what a failure skips, how it ends."""

from __future__ import annotations

from wfsched.dag.graph import branches_of
from wfsched.models.state import JobRecord, JobStatus, WorkflowRecord, WorkflowStatus


class WorkflowRun:
    """The live state of one admitted or queued workflow. Plain state: no Ray, no I/O."""

    def __init__(self, record: WorkflowRecord, jobs: list[JobRecord]) -> None:
        self.record = record
        self.jobs = {job.job_id: job for job in sorted(jobs, key=lambda j: j.index)}
        self.branches = branches_of(self.jobs.values())
        self.cancel_requested = record.status == WorkflowStatus.cancelled

    @property
    def workflow_id(self) -> str:
        return self.record.workflow_id

    @property
    def user_id(self) -> str:
        return self.record.user_id

    def running(self) -> list[JobRecord]:
        return [job for job in self.jobs.values() if job.status == JobStatus.running]

    def startable(self) -> list[JobRecord]:
        """Pending jobs that may start now: first unfinished of their branch, dependencies succeeded."""
        if self.cancel_requested or self.record.status != WorkflowStatus.running:
            return []
        ready = []
        for job_ids in self.branches.values():
            head = next((self.jobs[j] for j in job_ids if not self.jobs[j].status.finished), None)
            if head is None or head.status != JobStatus.pending:
                continue
            if all(self.jobs[dep].status == JobStatus.succeeded for dep in head.depends_on):
                ready.append(head)
        return ready

    def next_in_branch(self, job: JobRecord) -> JobRecord | None:
        order = self.branches[job.branch]
        position = order.index(job.job_id)
        return self.jobs[order[position + 1]] if position + 1 < len(order) else None

    def ready_at(self, job: JobRecord) -> float | None:
        """When `job` could first start: admitted, its branch predecessor and dependencies ended."""
        previous = self.previous_in_branch(job)
        before = [*(self.jobs[dep] for dep in job.depends_on), *([previous] if previous else [])]
        times = [self.record.admitted_at, *(j.finished_at for j in before)]
        return None if any(t is None for t in times) else max(t for t in times if t is not None)

    def previous_in_branch(self, job: JobRecord) -> JobRecord | None:
        order = self.branches[job.branch]
        position = order.index(job.job_id)
        return self.jobs[order[position - 1]] if position else None

    def continuation(self, job: JobRecord) -> JobRecord | None:
        """The job after `job` in its branch if it is pending and only `job` holds it back: all
        else it depends on has succeeded.

        Order edges do not carry failure: it may start the moment `job` ends, whatever the outcome,
        unless the workflow is cancelled, or it depends on `job` too and `job` did not succeed
        (`JobExecutor` checks that when `job` ends).
        """
        following = self.next_in_branch(job)
        if following is None or following.status != JobStatus.pending:
            return None
        others = [dep for dep in following.depends_on if dep != job.job_id]
        if any(self.jobs[dep].status != JobStatus.succeeded for dep in others):
            return None
        return following

    def skip_blocked(self) -> list[JobRecord]:
        """Mark `skipped` every pending job whose dependency can no longer succeed; return them."""
        skipped = []
        changed = True
        while changed:
            changed = False
            for job in self.jobs.values():
                if job.status != JobStatus.pending:
                    continue
                blocker = next((d for d in job.depends_on if self._cannot_succeed(d)), None)
                if blocker is not None:
                    job.status = JobStatus.skipped
                    job.error = f"skipped: dependency {blocker!r} {self.jobs[blocker].status.value}"
                    skipped.append(job)
                    changed = True
        return skipped

    def cancel_pending(self) -> list[JobRecord]:
        """Cancel every job that has not started; return them. Running ones must be told to stop."""
        self.cancel_requested = True
        cancelled = []
        for job in self.jobs.values():
            if job.status == JobStatus.pending:
                job.status = JobStatus.cancelled
                job.error = "cancelled before it started"
                cancelled.append(job)
        return cancelled

    def outcome(self) -> WorkflowStatus | None:
        """The final status once every job has finished, else None."""
        if not all(job.status.finished for job in self.jobs.values()):
            return None
        if self.cancel_requested:
            return WorkflowStatus.cancelled
        if any(job.status in (JobStatus.failed, JobStatus.skipped) for job in self.jobs.values()):
            return WorkflowStatus.failed
        return WorkflowStatus.succeeded

    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys((s.value for s in JobStatus), 0)
        for job in self.jobs.values():
            counts[job.status.value] += 1
        return {"jobs": len(self.jobs), **counts}

    def _cannot_succeed(self, job_id: str) -> bool:
        return self.jobs[job_id].status in (JobStatus.failed, JobStatus.skipped, JobStatus.cancelled)
