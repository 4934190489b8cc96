"""What the routes call: validation, then the SchedulerActor. Ray errors are unwrapped here."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import ray
from ray.exceptions import RayTaskError

from wfsched.api import tokens
from wfsched.api.feed import EventFeed
from wfsched.api.limits import StreamSlot, StreamSlots
from wfsched.config import Settings
from wfsched.control import actors
from wfsched.control.messages import Pickled
from wfsched.control.progress import ProgressActor
from wfsched.control.scheduler import SchedulerActor
from wfsched.dag.graph import branches_of
from wfsched.dag.validation import validate_workflow
from wfsched.exceptions import NotFoundError, WfschedError
from wfsched.jobs.registry import JobType, load_job_types
from wfsched.models.event import Event, EventType
from wfsched.models.state import (
    JobRecord,
    ProgressSnapshot,
    WorkflowDetail,
    WorkflowPage,
    WorkflowRecord,
    WorkflowStatus,
)
from wfsched.models.workflow import WorkflowSubmission
from wfsched.observe import logs
from wfsched.observe.metrics import Meter
from wfsched.store.keys import hash_key
from wfsched.store.paths import file_in, job_output_dir, resolve_in_data_roots
from wfsched.types import Handle

T = TypeVar("T")
log = logging.getLogger(__name__)
# Keys a replica remembers at most: far more than the labs and platform teams that call one.
API_KEY_CACHE_SIZE = 1024


async def call(ref: Awaitable[T]) -> T:
    """Await an actor call; a domain error raised in the actor surfaces as itself."""
    try:
        return await ref
    except RayTaskError as exc:
        if isinstance(exc.cause, WfschedError):
            raise exc.cause from None
        raise


async def long_poll(ref: Awaitable[T]) -> T:
    """Await a long-poll; if the caller goes away (a client disconnected), cancel it in the actor."""
    try:
        return await call(ref)
    except asyncio.CancelledError:
        ray.cancel(ref)  # type: ignore[arg-type]
        raise


class Service:
    """One per Api replica: the settings, the job types and the handles of the named actors."""

    def __init__(self, settings: Settings, job_types: dict[str, JobType] | None = None) -> None:
        self.settings = settings
        self.job_types = job_types if job_types is not None else load_job_types(settings)
        self.scheduler: Handle = actors.get_or_create(SchedulerActor, actors.SCHEDULER_NAME, settings, on_head=True)
        self.progress_actor: Handle = actors.get_or_create(ProgressActor, actors.PROGRESS_NAME, settings, on_head=True)
        self.streams = StreamSlots(settings.max_streams_per_user, settings.max_streams_per_replica)
        self.feed = EventFeed(self._fetch_feed, self._newest_event_id, settings.heartbeat_s)
        self.meter = Meter(settings.metrics_tenant_label)
        self._open_streams: Counter[str] = Counter()
        # key hash -> (user, when looked up); only found keys are kept, so a new key works at once.
        self._api_keys: dict[str, tuple[str, float]] = {}
        # Starts the scheduler's periodic rounds (reconcile, gauges and heartbeat) now rather than
        # at the first request: metrics and the heartbeat alert need them from the start.
        self.scheduler.ready.remote()

    async def ready(self) -> bool:
        return await call(self.scheduler.ready.remote())

    async def submit(
        self, user_id: str, workflow: WorkflowSubmission, idempotency_key: str | None = None
    ) -> WorkflowRecord:
        """Validate, then hand to the scheduler; counted as accepted, or rejected by error code."""
        tenant = self.meter.tenant(user_id)
        try:
            record = await self._submit(user_id, workflow, idempotency_key)
        except WfschedError as error:
            self.meter.inc("wfsched_workflows_submitted_total", tenant=tenant, outcome="rejected", reason=error.code)
            raise
        self.meter.inc("wfsched_workflows_submitted_total", tenant=tenant, outcome="accepted", reason="")
        return record

    async def _submit(self, user_id: str, workflow: WorkflowSubmission, idempotency_key: str | None) -> WorkflowRecord:
        resolved: dict[str, Path] = {}  # each image path checked and resolved once

        def check_image_path(image_path: str) -> None:
            if image_path not in resolved:  # a workflow's jobs mostly share one slide
                resolved[image_path] = resolve_in_data_roots(image_path, self.settings.data_roots)

        params = validate_workflow(
            workflow,
            {name: t.params_model for name, t in self.job_types.items()},
            self.settings.max_jobs_per_workflow,
            check_image_path,
        )
        # The id is made here so that a retried call to a restarting scheduler cannot accept twice.
        workflow_id = uuid.uuid4().hex
        jobs = workflow.job_records(workflow_id, params, resolved)
        idempotency = None if idempotency_key is None else (idempotency_key, _body_sha256(workflow))
        # The request's id (the app's RequestLogContext set it) goes with the call: Ray would not carry it.
        request_id = logs.request_id()
        with logs.log_context(tenant=user_id, workflow_id=workflow_id):
            log.info("submitting workflow %s: %d jobs", workflow_id, len(jobs))
        accepted: WorkflowRecord = await call(
            self.scheduler.submit.remote(workflow_id, user_id, workflow.name, Pickled(jobs), idempotency, request_id)
        )
        return accepted

    async def list_workflows(
        self, user_id: str, status: WorkflowStatus | None, cursor: str | None, limit: int
    ) -> WorkflowPage:
        rows: list[WorkflowRecord] = await call(
            self.scheduler.list_workflows.remote(user_id, status, cursor, limit + 1)
        )
        page = rows[:limit]
        next_cursor = page[-1].workflow_id if len(rows) > limit else None
        return WorkflowPage(workflows=page, next_cursor=next_cursor)

    async def workflow(self, user_id: str, workflow_id: str) -> WorkflowDetail:
        record, jobs = await self._workflow(user_id, workflow_id)
        return WorkflowDetail(**record.model_dump(), branches=branches_of(jobs), jobs=jobs)

    async def cancel(self, user_id: str, workflow_id: str) -> WorkflowRecord:
        return await call(self.scheduler.cancel.remote(user_id, workflow_id))

    async def jobs(self, user_id: str, workflow_id: str) -> list[JobRecord]:
        _, jobs = await self._workflow(user_id, workflow_id)
        return jobs

    async def job(self, user_id: str, workflow_id: str, job_id: str) -> JobRecord:
        for job in await self.jobs(user_id, workflow_id):
            if job.job_id == job_id:
                return job
        raise NotFoundError(f"no job {job_id!r} in workflow {workflow_id!r}")

    async def artifact_path(self, user_id: str, workflow_id: str, job_id: str, name: str) -> Path:
        """The file of an artifact the job lists, inside its output folder; else NotFoundError."""
        job = await self.job(user_id, workflow_id, job_id)
        folder = job_output_dir(self.settings.results_dir, user_id, workflow_id, job_id)
        path = file_in(folder, name) if job.lists_artifact(name) else None
        if path is None:
            raise NotFoundError(f"job {job_id!r} has no artifact {name!r}")
        return path

    async def progress(self, user_id: str, workflow_id: str) -> ProgressSnapshot:
        record, jobs = await self._workflow(user_id, workflow_id)
        return ProgressSnapshot.of(record, jobs)

    @property
    def open_streams(self) -> int:
        return self.streams.open

    async def workflow_events(self, user_id: str, workflow_id: str, after_seq: int) -> AsyncIterator[list[Event]]:
        """The workflow's events after `after_seq` in batches (all there are at the time), an empty
        batch at each idle heartbeat; ends after the last.

        Counted and checked now (429 over the stream limits, 404 for another's workflow), so both
        are answers rather than a broken stream; the events come as the stream is read.
        """
        slot = self.streams.acquire(user_id)
        try:
            record = await self.owned(user_id, workflow_id)
        except BaseException:
            slot.release()
            raise
        return _held(slot, self._workflow_events(record, after_seq))

    async def _workflow_events(self, record: WorkflowRecord, after_seq: int) -> AsyncIterator[list[Event]]:
        workflow_id = record.workflow_id
        subscription = await self.feed.subscribe_workflow(workflow_id)
        try:
            while True:
                # History first (once, and again only after falling behind), then the feed.
                subscription.drain()
                async for page in self._history(self.progress_actor.wait, workflow_id, after_seq, _by_seq):
                    page, finished = _until_finished(page)
                    yield page
                    after_seq = page[-1].seq
                    if finished:
                        return
                if record.status.finished:
                    return  # nothing after its end: the history had all there is
                while not subscription.overflowed:
                    fresh = [e for e in await subscription.take(self.settings.heartbeat_s) if e.seq > after_seq]
                    fresh, finished = _until_finished(fresh)
                    yield fresh
                    after_seq = fresh[-1].seq if fresh else after_seq
                    if finished:
                        return
        finally:
            self.feed.unsubscribe(subscription)

    def user_events(self, user_id: str, after_id: int) -> AsyncIterator[list[Event]]:
        """All of the user's events after the global `after_id`, in batches as above; endless.

        Counted now: over the stream limits it raises QuotaExceededError before any stream starts.
        """
        return _held(self.streams.acquire(user_id), self._user_events(user_id, after_id))

    async def _user_events(self, user_id: str, after_id: int) -> AsyncIterator[list[Event]]:
        subscription = await self.feed.subscribe_user(user_id)
        try:
            while True:
                subscription.drain()
                async for page in self._history(self.progress_actor.wait_user, user_id, after_id, _by_id):
                    yield page
                    after_id = _by_id(page[-1])
                while not subscription.overflowed:
                    fresh = [e for e in await subscription.take(self.settings.heartbeat_s) if _by_id(e) > after_id]
                    yield fresh
                    after_id = _by_id(fresh[-1]) if fresh else after_id
        finally:
            self.feed.unsubscribe(subscription)

    @staticmethod
    async def _history(wait: Any, key: str, after: int, position: Callable[[Event], int]) -> AsyncIterator[list[Event]]:
        """What a stream missed before it opened (`wait` with no waiting), page by page until none is left."""
        while events := await long_poll(wait.remote(key, after, 0.0)):
            yield events
            after = position(events[-1])

    async def measured(self, batches: AsyncIterator[list[Event]], transport: str) -> AsyncIterator[list[Event]]:
        """The batches of one open stream, counted among the open streams, each event's lag measured.

        The lag is from the event's time to its hand-over to the stream's writer.
        """
        self._open_streams[transport] += 1
        self.meter.set("wfsched_open_streams", self._open_streams[transport], transport=transport)
        try:
            async for batch in batches:
                now = time.time()
                for event in batch:
                    self.meter.observe("wfsched_event_delivery_lag_seconds", now - event.ts, transport=transport)
                yield batch
        finally:
            self._open_streams[transport] -= 1
            self.meter.set("wfsched_open_streams", self._open_streams[transport], transport=transport)
            await batches.aclose()  # type: ignore[attr-defined]  # frees the stream's slot at once

    async def _fetch_feed(self, after_id: int, timeout_s: float) -> list[tuple[str, Event]]:
        return await long_poll(self.progress_actor.feed.remote(after_id, timeout_s))  # type: ignore[no-any-return]

    async def _newest_event_id(self) -> int:
        return await call(self.progress_actor.last_event_id.remote())  # type: ignore[no-any-return]

    async def owned(self, user_id: str, workflow_id: str) -> WorkflowRecord:
        """The workflow's record if the user owns it, else NotFoundError."""
        return await call(self.scheduler.owned.remote(user_id, workflow_id))  # type: ignore[no-any-return]

    async def api_key_user(self, key: str) -> str | None:
        """The user of an unrevoked API key, from the scheduler; remembered api_key_cache_s at most."""
        key_hash = hash_key(key)  # the key itself never leaves this process
        now = time.monotonic()
        cached = self._api_keys.get(key_hash)
        if cached is not None and now - cached[1] < self.settings.api_key_cache_s:
            return cached[0]
        user: str | None = await call(self.scheduler.api_key_user.remote(key_hash))
        if user is None:
            self._api_keys.pop(key_hash, None)
        else:
            if len(self._api_keys) >= API_KEY_CACHE_SIZE:
                self._api_keys.clear()  # crude, but a replica sees a few keys, not thousands
            self._api_keys[key_hash] = (user, now)
        return user

    def stream_token(self, user_id: str) -> tuple[str, float]:
        return tokens.issue(user_id, self.settings.stream_token_secret, self.settings.stream_token_ttl_s)

    async def _workflow(self, user_id: str, workflow_id: str) -> tuple[WorkflowRecord, list[JobRecord]]:
        return await call(self.scheduler.workflow.remote(user_id, workflow_id))  # type: ignore[no-any-return]


def _body_sha256(workflow: WorkflowSubmission) -> str:
    """The submission's hash, the same for the same content however its JSON was spaced or ordered."""
    canonical = json.dumps(workflow.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _held(slot: StreamSlot, batches: AsyncIterator[list[Event]]) -> AsyncIterator[list[Event]]:
    """The batches, holding the stream's slot until the stream ends or its client goes away."""
    try:
        async for batch in batches:
            yield batch
    finally:
        slot.release()
        await batches.aclose()  # type: ignore[attr-defined]


def _until_finished(events: list[Event]) -> tuple[list[Event], bool]:
    """The events up to and with the workflow's end, and whether it was among them."""
    for index, event in enumerate(events):
        if event.type == EventType.workflow_finished:
            return events[: index + 1], True
    return events, False


def _by_seq(event: Event) -> int:
    return event.seq


def _by_id(event: Event) -> int:
    return event.id or 0
