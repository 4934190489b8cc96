"""BranchActor: hosts branch lanes and runs their jobs; a thin shell over LaneHost.

DESIGN.md draws one BranchActor per (workflow, branch). A Ray actor is a whole worker process
(~100 MB), and three active users with a few dozen workflows of four branches each would need
hundreds, so a small pool of these hosts the lanes instead: `settings.branch_actors` of them, a
lane always on the same one. The scheduler still starts a branch's jobs one at a time, in order.
"""

from __future__ import annotations

import logging

import ray

from wfsched.config import Settings
from wfsched.control import actors
from wfsched.control.lane import JobReport, LaneHost
from wfsched.control.scheduler_state import Command, StartJob
from wfsched.jobs.registry import load_job_types
from wfsched.types import Handle

log = logging.getLogger(__name__)

# Threads serve stop and status calls while job runners work in threads of their own.
MAX_CONCURRENT_CALLS = 64


@ray.remote(max_concurrency=MAX_CONCURRENT_CALLS)  # type: ignore[call-overload]
class BranchActor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._scheduler: Handle | None = None
        self.host = LaneHost(settings, load_job_types(settings), self._report_finished, self._report_progress)

    def ready(self) -> bool:
        return True

    def apply(self, commands: list[Command]) -> None:
        """Start and stop jobs, in the order the scheduler decided them."""
        for command in commands:
            if isinstance(command, StartJob):
                self.host.start(command)
            else:
                self.host.stop(command.workflow_id, command.job_id)

    def known_jobs(self) -> list[tuple[str, str]]:
        return self.host.known()

    def _scheduler_handle(self) -> Handle:
        if self._scheduler is None:
            self._scheduler = actors.existing(actors.SCHEDULER_NAME, self.settings)
        return self._scheduler

    def _report_finished(self, report: JobReport) -> None:
        self._scheduler_handle().job_finished.remote(
            report.workflow_id,
            report.job_id,
            report.status,
            report.started_at,
            report.finished_at,
            report.result,
            report.error,
        )

    def _report_progress(self, workflow_id: str, job_id: str, done: int, total: int) -> None:
        self._scheduler_handle().job_progress.remote(workflow_id, job_id, done, total)
