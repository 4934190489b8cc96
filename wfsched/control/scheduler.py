"""SchedulerActor: one, named, detached, restartable; a thin shell over SchedulerState."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import ray

from wfsched.config import Settings
from wfsched.control import actors
from wfsched.control.branch import BranchActor
from wfsched.control.messages import Command, Pickled, Report, StartJob
from wfsched.control.progress import ProgressActor
from wfsched.control.quota import SubmitLimits
from wfsched.control.scheduler_state import Admitted, Gauges, IdempotencyKey, Measure, Outcome, SchedulerState
from wfsched.models.event import Event
from wfsched.models.state import JobRecord, JobStatus, WorkflowRecord, WorkflowStatus
from wfsched.observe import logs
from wfsched.observe.metrics import Meter
from wfsched.store.keys import ApiKeyStore
from wfsched.store.runs import SqlRunStore

log = logging.getLogger(__name__)

# Expired idempotency keys are ignored at once; deleting them is only housekeeping.
FORGET_KEYS_EVERY_S = 3600.0
# How often the gauges (queues, running jobs, stalled time, the heartbeat) are set.
GAUGES_EVERY_S = 2.0
# Queued events (new places in line) made in one loop turn at most: a few ms of work, so that
# the ~2,000 of one admission at ten times the seed's scale don't hold up the lanes' reports.
PLACES_PER_TURN = 256


@ray.remote
class SchedulerActor:
    """Holds the scheduler state; every method is quick and never awaits in the middle of a change.

    It is an async actor so that one event loop serialises all changes without locks.
    """

    def __init__(self, settings: Settings) -> None:
        logs.install()
        self.settings = settings
        self._code = actors.code_fingerprint()
        self.state = SchedulerState(
            SqlRunStore(settings.db),
            settings.max_active_users,
            limits=SubmitLimits(settings.max_submissions_per_minute, settings.max_queued_workflows_per_user),
            idempotency_ttl_s=settings.idempotency_ttl_s,
        )
        self.keys = ApiKeyStore(settings.db)
        self.progress = actors.get_or_create(ProgressActor, actors.PROGRESS_NAME, settings, on_head=True)
        # Started now: a worker process takes seconds to start and import the job runners.
        self._branch_hosts = {
            i: actors.get_or_create(BranchActor, actors.BRANCH_NAME.format(index=i), settings)
            for i in range(settings.branch_actors)
        }
        self.meter = Meter(settings.metrics_tenant_label)
        self._reconciler: asyncio.Task[None] | None = None
        self._gauges: asyncio.Task[None] | None = None
        self._outbox: dict[int, list[Command]] = {}
        self._events_out: list[tuple[str, Event]] = []
        self._flush_scheduled = False
        self._announce_scheduled = False
        self._apply(self.state.recover())
        actors.freeze_startup_heap()

    async def started_with(self) -> tuple[str, Settings]:
        """The code (`actors.code_fingerprint`) and settings this actor runs with: a later start
        joined to the cluster checks them against its own (api/joined.py)."""
        return self._code, self.settings

    async def ready(self) -> bool:
        """True once the lane hosts answer too: then a job starts without waiting for a process."""
        self._ensure_reconciler()
        await asyncio.gather(*(host.ready.remote() for host in self._branch_hosts.values()))
        return True

    async def submit(
        self,
        workflow_id: str,
        user_id: str,
        name: str,
        jobs: list[JobRecord],
        idempotency: IdempotencyKey | None = None,
        request_id: str | None = None,
    ) -> WorkflowRecord:
        self._ensure_reconciler()
        with logs.log_context(request_id=request_id, tenant=user_id, workflow_id=workflow_id):
            record, outcome = self.state.submit(workflow_id, user_id, name, jobs, idempotency, request_id)
            log.info("workflow %s of %s: %s, %d jobs", workflow_id, user_id, record.status, len(jobs))
            self._apply(outcome)
        return record

    async def cancel(self, user_id: str, workflow_id: str) -> WorkflowRecord:
        record, outcome = self.state.cancel(user_id, workflow_id)
        self._apply(outcome)
        return record

    async def report(self, reports: list[Report]) -> None:
        """What the lanes report (job ends, progress), in their order."""
        self._apply(self.state.apply_reports(reports))

    async def owned(self, user_id: str, workflow_id: str) -> WorkflowRecord:
        return self.state.owned(user_id, workflow_id)

    async def workflow(self, user_id: str, workflow_id: str) -> Pickled:
        """The workflow and its jobs (the caller gets the pair)."""
        return Pickled(self.state.workflow(user_id, workflow_id))

    async def list_workflows(
        self, user_id: str, status: WorkflowStatus | None, before: str | None, limit: int
    ) -> Pickled:
        """The caller gets the list of records."""
        return Pickled(self.state.list_workflows(user_id, status, before, limit))

    async def api_key_user(self, key_hash: str) -> str | None:
        """The user of an unrevoked API key, by its hash: API replicas never open the database."""
        return self.keys.user_of(key_hash)

    def _apply(self, outcome: Outcome) -> None:
        """Queue commands and events; they go out together once the calls at hand are done.

        Batching makes one call per lane host and one publish per loop turn instead of one per
        job: under load that is most of the scheduler's work. Commands to a host keep their order.
        """
        for command in outcome.commands:
            self._outbox.setdefault(self._host_of(command), []).append(command)
        self._events_out += outcome.events
        _record(self.meter, outcome.measures)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            _soon(self._flush)
        if self.state.line_moved and not self._announce_scheduled:
            self._announce_scheduled = True
            _soon(self._announce_places)  # after the flush: the starts of those admitted go first

    def _announce_places(self) -> None:
        self._announce_scheduled = False
        self._apply(self.state.announce_places(most=PLACES_PER_TURN))

    def _flush(self) -> None:
        self._flush_scheduled = False
        outbox, self._outbox = self._outbox, {}
        events, self._events_out = self._events_out, []
        for index, commands in outbox.items():
            self._branch_hosts[index].apply.remote(Pickled(commands))
        if events:
            self.progress.publish.remote(Pickled(events))

    def _host_of(self, command: Command) -> int:
        workflow_id = command.job.workflow_id if isinstance(command, StartJob) else command.workflow_id
        branch = command.job.branch if isinstance(command, StartJob) else command.branch
        return actors.branch_index(self.settings, workflow_id, branch)

    def _ensure_reconciler(self) -> None:
        if self._reconciler is None:
            self._reconciler = asyncio.get_running_loop().create_task(self._reconcile_forever())
        if self._gauges is None:
            self._gauges = asyncio.get_running_loop().create_task(self._gauges_forever())

    async def _gauges_forever(self) -> None:
        """Set the gauges from the state every GAUGES_EVERY_S; the heartbeat says this loop lives."""
        while True:
            try:
                _set_gauges(self.meter, self.state.gauges())
            except Exception:
                log.exception("setting the gauges failed; trying again in %.1f s", GAUGES_EVERY_S)
            await asyncio.sleep(GAUGES_EVERY_S)

    async def _reconcile_forever(self) -> None:
        """Re-send running jobs that no lane knows (a branch host restarted), and drop expired
        idempotency keys now and then; survives any error."""
        forgotten_at = 0.0
        while True:
            await asyncio.sleep(self.settings.reconcile_interval_s)
            try:
                if time.monotonic() - forgotten_at > FORGET_KEYS_EVERY_S:
                    self.state.forget_old_idempotency_keys()
                    forgotten_at = time.monotonic()
                await self._reconcile_once()
            except Exception:
                log.exception("reconcile failed; trying again in %.1f s", self.settings.reconcile_interval_s)

    async def _reconcile_once(self) -> None:
        """Ask each branch host which of its settled running jobs it knows; the state decides
        which to start again. Only running jobs are asked about, so a round costs what runs now."""
        # A job started within the last interval may not have reached its lane yet.
        settled_before = time.time() - self.settings.reconcile_interval_s
        asked: dict[int, list[tuple[str, str]]] = {}
        for job in self.state.settled_running(settled_before):
            index = actors.branch_index(self.settings, job.workflow_id, job.branch)
            asked.setdefault(index, []).append((job.workflow_id, job.job_id))
        known: set[tuple[str, str]] = set()
        for index, keys in asked.items():
            known.update(
                (workflow_id, job_id) for workflow_id, job_id in await self._branch_hosts[index].known_jobs.remote(keys)
            )
        # Decided after the awaits, on the state as it is now.
        for command in self.state.restarts_for_lost_jobs(known, settled_before):
            log.warning("job %s/%s is known to no lane; starting it again", command.job.workflow_id, command.job.job_id)
            self._apply(Outcome(commands=[command]))


def _soon(callback: Callable[[], None]) -> None:
    """Run `callback` once the calls at hand are done; at once while there is no loop yet (in
    `__init__`, during recovery)."""
    try:
        asyncio.get_running_loop().call_soon(callback)
    except RuntimeError:
        callback()


def _record(meter: Meter, measures: list[Measure]) -> None:
    for measure in measures:
        if isinstance(measure, Admitted):
            meter.observe("wfsched_admission_wait_seconds", measure.wait_s, tenant=meter.tenant(measure.user_id))
            continue
        tenant, job_type = meter.tenant(measure.user_id), measure.job_type
        meter.observe(
            "wfsched_job_duration_seconds", measure.duration_s, tenant=tenant, job_type=job_type, status=measure.status
        )
        if measure.overhead_s is not None:
            meter.observe("wfsched_scheduling_overhead_seconds", measure.overhead_s, job_type=job_type)
        if measure.status == JobStatus.failed:
            meter.inc("wfsched_job_failures_total", job_type=job_type, error=measure.error_type or "unknown")


def _set_gauges(meter: Meter, gauges: Gauges) -> None:
    meter.set_each("wfsched_workflows_queued", meter.per_tenant(gauges.queued))
    meter.set_each("wfsched_workflows_admitted", meter.per_tenant(gauges.admitted))
    meter.set("wfsched_active_users", gauges.active_users)
    meter.set("wfsched_active_users_limit", gauges.active_users_limit)
    meter.set_each("wfsched_jobs_running", {(job_type,): n for job_type, n in gauges.running.items()})
    meter.set_each("wfsched_job_progress_stalled_seconds", {(t,): s for t, s in gauges.stalled_s.items()})
    meter.set("wfsched_scheduler_heartbeat_timestamp_seconds", time.time())
