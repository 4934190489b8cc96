"""JobExecutor runs the jobs the scheduler starts, each in a thread of its host process.

The scheduler starts a branch's jobs one at a time, so a branch's lane is a run of these threads.
`JobExecutor` is plain Python: it runs runners, honours stop requests and reports through
callbacks, so unit tests drive it without Ray. `BranchActor` (branch.py) holds one.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from wfsched.config import Settings
from wfsched.control.messages import JobReport, ProgressReport, Report, StartJob
from wfsched.exceptions import JobCancelledError, WfschedError
from wfsched.jobs.registry import JobContext, JobType, UpstreamJob
from wfsched.models.state import JobRecord, JobResult, JobStatus
from wfsched.observe import logs
from wfsched.store.paths import job_output_dirs

log = logging.getLogger(__name__)

# Finished reports are remembered so a re-sent start (after a scheduler restart) re-reports
# instead of re-running; bounded so a long-lived host does not grow without end.
REMEMBERED_REPORTS = 20_000
# Jobs one host runs at once: far above the lanes of three active users' workflows.
MAX_RUNNING_JOBS = 4_096


ReportCallback = Callable[[Report], None]


class JobExecutor:
    """Runs the jobs the scheduler starts; a job's key is (workflow_id, job_id)."""

    def __init__(
        self,
        settings: Settings,
        job_types: Mapping[str, JobType],
        on_report: ReportCallback,
        threads_at_start: int = 0,
    ) -> None:
        self.settings = settings
        self.job_types = job_types
        self.on_report = on_report
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], threading.Event] = {}
        self._reports: OrderedDict[tuple[str, str], JobReport] = OrderedDict()
        # Running job → the next job of its branch, to start when it ends (StartJob.then).
        self._then: dict[tuple[str, str], StartJob] = {}
        # Reused threads, one per running job: lanes must never wait for a free thread.
        self._threads = ThreadPoolExecutor(max_workers=MAX_RUNNING_JOBS, thread_name_prefix="job")
        self._start_threads(threads_at_start)

    def _start_threads(self, count: int) -> None:
        """Start `count` job threads now, idle until jobs come: a burst of starts (a user admitted
        with dozens of workflows) then reuses them, instead of waiting for new threads one by one,
        each of which must get the GIL before the next can start."""
        if count <= 0:
            return
        all_started = threading.Barrier(count + 1)
        for _ in range(count):
            self._threads.submit(all_started.wait)
        all_started.wait()

    def start(self, command: StartJob) -> None:
        """Start a job in its own thread; a job already running or finished here is not run again."""
        cancel = self._claim(command)
        if cancel is not None:
            self._threads.submit(self._run_lane, command, cancel)

    def _claim(self, command: StartJob) -> threading.Event | None:
        """Mark the job running here and return its cancel event; None if it runs here already or
        finished here (then its report goes out again). Its `then` is kept for when it ends."""
        key = (command.job.workflow_id, command.job.job_id)
        with self._lock:
            report = self._reports.get(key)
            if report is None and command.then is not None:
                self._then[key] = command.then
            if key in self._running:
                return None
            if report is None:
                cancel = self._running[key] = threading.Event()
                return cancel
        self.on_report(report)
        return None

    def stop(self, workflow_id: str, job_id: str) -> bool:
        """Tell a running job to stop, or drop it as a continuation not yet started; True if running."""
        key = (workflow_id, job_id)
        with self._lock:
            self._then = {k: c for k, c in self._then.items() if (c.job.workflow_id, c.job.job_id) != key}
            cancel = self._running.get(key)
        if cancel is not None:
            cancel.set()
        return cancel is not None

    def known(self, keys: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Those of `keys` (workflow id, job id) whose jobs run here, or finished here and are remembered."""
        with self._lock:
            return [key for key in keys if key in self._running or key in self._reports]

    def _run_lane(self, command: StartJob, cancel: threading.Event) -> None:
        """Run a job, then its continuation (`StartJob.then`) if that may follow, and so on, in this
        same thread: the next job of a branch starts without a hop to another thread (a wake-up,
        then a wait for the GIL among the threads of a wave of job ends)."""
        while True:
            following = self._run_in_context(command, cancel)
            if following is None:
                return
            claimed = self._claim(following)
            if claimed is None:
                return
            command, cancel = following, claimed

    def _run_in_context(self, command: StartJob, cancel: threading.Event) -> StartJob | None:
        """`_run`, every line logged meanwhile in this thread carrying the job's fields (observe/logs.py)."""
        job = command.job
        key = (job.workflow_id, job.job_id)
        tenant, workflow_id = command.user_id, job.workflow_id
        with logs.log_context(request_id=command.request_id, tenant=tenant, workflow_id=workflow_id, job_id=job.job_id):
            log.info("job %s (%s) started on branch %s", job.job_id, job.job_type, job.branch)
            following = self._run(command, cancel)
            with self._lock:
                report = self._reports.get(key)
            if report is not None:
                log.info("job %s %s in %.1f s", job.job_id, report.status, report.finished_at - report.started_at)
        return following

    def _run(self, command: StartJob, cancel: threading.Event) -> StartJob | None:
        """Run the job and report its end; returns its continuation if that may start now."""
        job = command.job
        started_at = time.time()
        status, result, error, error_type = JobStatus.succeeded, None, None, None
        try:
            result = self._execute(command, cancel)
        except JobCancelledError:
            status, error = JobStatus.cancelled, "cancelled while running"
        except Exception as exc:  # a runner may raise anything; the job fails, the host lives on
            status = JobStatus.cancelled if cancel.is_set() else JobStatus.failed
            error = exc.detail if isinstance(exc, WfschedError) else f"{type(exc).__name__}: {exc}"
            error_type = exc.code if isinstance(exc, WfschedError) else type(exc).__name__
            if status == JobStatus.failed and not isinstance(exc, WfschedError):
                log.warning("job %s/%s failed:\n%s", job.workflow_id, job.job_id, traceback.format_exc())
        report = JobReport(job.workflow_id, job.job_id, status, started_at, time.time(), result, error, error_type)
        with self._lock:
            self._running.pop((job.workflow_id, job.job_id), None)
            self._reports[(job.workflow_id, job.job_id)] = report
            while len(self._reports) > REMEMBERED_REPORTS:
                self._reports.popitem(last=False)
            following = self._then.pop((job.workflow_id, job.job_id), None)
        self.on_report(report)
        if following is not None and _may_follow(following, report):
            return _with_outcome(following, report)
        return None

    def _execute(self, command: StartJob, cancel: threading.Event) -> dict[str, Any]:
        job = command.job
        job_type = self.job_types.get(job.job_type)
        if job_type is None:
            raise WfschedError(f"job type {job.job_type!r} is not registered on this worker")
        # Upstream jobs are jobs of the same workflow: its folder is checked once for them all.
        job_ids = [job.job_id, *(upstream.job_id for upstream in command.upstream)]
        results = self.settings.results_dir
        output_dir, *upstream_dirs = job_output_dirs(results, command.user_id, job.workflow_id, job_ids)
        context = JobContext(
            workflow_id=job.workflow_id,
            job_id=job.job_id,
            user_id=command.user_id,
            image_path=Path(job.image_path),
            params=job_type.params_model.model_validate(job.params),
            settings=self.settings,
            output_dir=output_dir,
            upstream={u.job_id: _upstream(u, dir_) for u, dir_ in zip(command.upstream, upstream_dirs, strict=True)},
            cancel_event=cancel,
            request_id=command.request_id,
            on_progress=lambda done, total: self.on_report(ProgressReport(job.workflow_id, job.job_id, done, total)),
        )
        context.check_cancelled()
        context.output_dir.mkdir(parents=True, exist_ok=True)
        # A result that is not a valid JobResult (artifacts not a list of names) fails the job here.
        return JobResult.model_validate(job_type.run(context) or {}).fields


def _upstream(job: JobRecord, output_dir: Path) -> UpstreamJob:
    return UpstreamJob(
        job_id=job.job_id,
        job_type=job.job_type,
        image_path=job.image_path,
        result=job.result.fields if job.result else {},
        output_dir=output_dir,
    )


def _may_follow(following: StartJob, ended: JobReport) -> bool:
    """Whether the continuation handed on with a job starts now that the job ended: not after a
    cancel, and, if it depends on that job, only after its success (else the scheduler skips it)."""
    if ended.status == JobStatus.cancelled:
        return False
    return ended.status == JobStatus.succeeded or ended.job_id not in following.job.depends_on


def _with_outcome(following: StartJob, ended: JobReport) -> StartJob:
    """The continuation, with the job that just ended, if it is upstream, as it ended: it was
    handed on while that job ran, so its record there has no result yet."""
    ended_key = (ended.workflow_id, ended.job_id)
    upstream = [
        job.model_copy(update=ended.outcome()) if (job.workflow_id, job.job_id) == ended_key else job
        for job in following.upstream
    ]
    return dataclasses.replace(following, upstream=upstream)
