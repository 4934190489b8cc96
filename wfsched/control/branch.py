"""BranchActor: hosts branch lanes and runs their jobs; a thin shell over JobExecutor.

DESIGN.md draws one BranchActor per (workflow, branch). A Ray actor is a whole worker process
(~100 MB), and three active users with a few dozen workflows of four branches each would need
hundreds, so a small pool of these hosts the lanes instead: `settings.branch_actors` of them, a
lane always on the same one. The scheduler still starts a branch's jobs one at a time, in order.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading

import ray

from wfsched.config import Settings
from wfsched.control import actors
from wfsched.control.executor import JobExecutor
from wfsched.control.messages import Command, Pickled, Report, StartJob
from wfsched.jobs.registry import load_job_types
from wfsched.observe import logs
from wfsched.types import Handle

log = logging.getLogger(__name__)

# Threads serve stop and status calls while job runners work in threads of their own.
MAX_CONCURRENT_CALLS = 64
# Reports sent in one call at most: bounds the size of one scheduler transaction.
MAX_REPORTS_PER_CALL = 64
# Job threads started with the host: about the lanes one host runs when three users each have
# dozens of four-branch workflows admitted; more start when needed.
JOB_THREADS_AT_START = 512
# How long a thread of a lane host may hold the GIL while another waits for it (Python's default
# is 5 ms). When a wave of jobs ends together, hundreds of job threads each need it for well under
# a millisecond to report, log and start their branch's next job. At 5 ms each waiting thread
# soon forces the holder out mid-way, so the GIL changed hands among all of them and each one's
# few steps ended with the whole wave's: at ten times the seed's scale, the p99 of a job started
# right after its branch predecessor was 0.9-1.3 s here (five runs), 0.36-0.8 s at 20 and 50 ms
# (four), and the overall p99 1.1-1.8 s against 0.6-0.9 s. The cost: a thread that runs Python
# for long keeps the others waiting up to 20 ms at a time, not 5; a job's heavy work runs in Ray
# tasks or in native code that lets go of the GIL.
GIL_SWITCH_INTERVAL_S = 0.02


@ray.remote(max_concurrency=MAX_CONCURRENT_CALLS)  # type: ignore[call-overload]
class BranchActor:
    def __init__(self, settings: Settings) -> None:
        logs.install(writer_thread=True)
        self.settings = settings
        self._scheduler: Handle | None = None
        self._outbox: queue.SimpleQueue[Report] = queue.SimpleQueue()
        self.host = JobExecutor(settings, load_job_types(settings), self._outbox.put, JOB_THREADS_AT_START)
        threading.Thread(target=self._send_reports, name="reports", daemon=True).start()
        actors.freeze_startup_heap()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)

    def ready(self) -> bool:
        return True

    def apply(self, commands: list[Command]) -> None:
        """Start and stop jobs, in the order the scheduler decided them."""
        for command in commands:
            if isinstance(command, StartJob):
                self.host.start(command)
            else:
                self.host.stop(command.workflow_id, command.job_id)

    def known_jobs(self, keys: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return self.host.known(keys)

    def _scheduler_handle(self) -> Handle:
        if self._scheduler is None:
            self._scheduler = actors.existing(actors.SCHEDULER_NAME, self.settings)
        return self._scheduler

    def _send_reports(self) -> None:
        """Send reports in their order, all that are waiting in one call, one call at a time.

        Jobs of a wave end together; one call (and one scheduler transaction) per burst, instead of
        one per job, is what keeps the time from a job's end to its successor's start short. While
        a call is on its way, what arrives waits for the next: the busier the scheduler, the bigger
        and fewer the calls; an idle one gets each report at once.
        """
        while True:
            batch = [self._outbox.get()]
            with contextlib.suppress(queue.Empty):
                while len(batch) < MAX_REPORTS_PER_CALL:
                    batch.append(self._outbox.get_nowait())
            try:
                ray.get(self._scheduler_handle().report.remote(Pickled(batch)))
            except Exception:  # the scheduler restarts; its handle retries, this loop must live on
                log.exception("could not send %d reports", len(batch))
