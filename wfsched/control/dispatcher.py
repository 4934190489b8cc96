"""DispatcherActor: one, named, on the head; hands accelerator slots to tile batches, batch by batch.

A thin shell over DispatcherState (the slots, holders and leases) and its BatchQueue (whose batch
goes next: fair share across tenants, or first come first served). Each waiting batch is one
pending `acquire` call, answered when the batch is granted a slot. Every few seconds the actor
reads the cluster's resources: the slot count follows nodes as they come and go, and `auto` GPUs
per task follow whether the cluster has GPUs.

A restarted dispatcher starts empty: the calls waiting for a slot are retried into it (Ray retries
a restarting actor's calls), and the slots of batches running meanwhile are not counted until
those end, so for that while Ray's queue may hold a few more tasks than there are slots.

`TaskSlots` is a job's side of it (a `pipeline.SlotSource`); `task_slots` finds or creates the actor.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from concurrent.futures import Future
from typing import Any

import ray

from wfsched.config import Settings
from wfsched.control import actors
from wfsched.control.batch_queue import SlotRequest
from wfsched.control.dispatcher_state import Decisions, DispatcherState, batch_queue, slot_count
from wfsched.observe import logs
from wfsched.observe.metrics import Meter
from wfsched.types import Handle

log = logging.getLogger(__name__)

# How often the slot count is read from the cluster and leases are checked: a node that joins or
# leaves counts within this (a read is one GCS call of about a millisecond).
ROUND_S = 2.0
# Each waiting batch is one pending call here, so this bounds the batches waiting at once: far
# above every running segmentation's `max_batches_in_flight` (1,024 at most) together.
MAX_CONCURRENT_CALLS = 100_000


@ray.remote(max_concurrency=MAX_CONCURRENT_CALLS)  # type: ignore[call-overload]
class DispatcherActor:
    """Every method is quick and never awaits in the middle of a change (one event loop, no locks)."""

    def __init__(self, settings: Settings) -> None:
        logs.install()
        self.settings = settings
        self._gpus_per_task = 0.0
        self.state = DispatcherState(batch_queue(settings), self._read_slots(), settings.slot_lease_s)
        self.meter = Meter(settings.metrics_tenant_label)
        self._waiters: dict[tuple[str, int], asyncio.Future[bool]] = {}
        self._rounds: asyncio.Task[None] | None = None
        log.info("dispatcher: %d slots, %s order", self.state.slots, settings.batch_order)
        actors.freeze_startup_heap()

    async def acquire(self, holder: str, request_id: int, tenant: str, cost: float) -> int | None:
        """Returns `request_id` once the batch has a slot, or None if its request was dropped."""
        self._ensure_rounds()
        key = (holder, request_id)
        waiter = self._waiters.get(key)
        if waiter is None:  # else a retried call: it waits for the same answer
            waiter = self._waiters[key] = asyncio.get_running_loop().create_future()
            self._settle(self.state.request(SlotRequest(holder, request_id, tenant, cost)))
        return request_id if await asyncio.shield(waiter) else None

    async def release(self, holder: str, request_id: int) -> None:
        self._settle(self.state.release(holder, request_id))

    async def renew(self, holder: str) -> None:
        self.state.renew(holder)

    async def close(self, holder: str) -> None:
        self._settle(self.state.close(holder))

    async def gpus_per_task(self) -> float:
        """What a segmentation task asks Ray for now (`auto` resolved against the cluster)."""
        self._ensure_rounds()
        return self._gpus_per_task

    async def stats(self) -> dict[str, Any]:
        """Slots in all and held, batches waiting, per tenant too (tests, the bench)."""
        return {
            "slots": self.state.slots,
            "held": self.state.held,
            "waiting": self.state.waiting,
            "held_by_tenant": dict(self.state.held_by_tenant()),
            "waiting_by_tenant": dict(self.state.waiting_by_tenant()),
            "gpus_per_task": self._gpus_per_task,
        }

    def _settle(self, decisions: Decisions) -> None:
        """Answer the calls of the requests granted (True) and dropped (False)."""
        for request, granted in [*((r, True) for r in decisions.granted), *((r, False) for r in decisions.dropped)]:
            waiter = self._waiters.pop(request.key, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(granted)

    def _read_slots(self) -> int:
        cluster = ray.cluster_resources()
        self._gpus_per_task = self.settings.gpus_per_task(cluster.get("GPU", 0.0))
        return slot_count(cluster, self._gpus_per_task)

    def _ensure_rounds(self) -> None:
        if self._rounds is None or self._rounds.done():
            self._rounds = asyncio.get_running_loop().create_task(self._every_round())

    async def _every_round(self) -> None:
        """Slots from the cluster, expired leases, gauges; a failed round is logged, the next one runs."""
        while True:
            await asyncio.sleep(ROUND_S)
            try:
                slots = self._read_slots()
                if slots != self.state.slots:
                    log.info("dispatcher: %d slots (was %d)", slots, self.state.slots)
                self._settle(self.state.set_slots(slots))
                self._settle(self.state.expire())
                self._set_gauges()
            except Exception:
                log.exception("dispatcher round failed")

    def _set_gauges(self) -> None:
        # Both counts for every tenant with a job asking, so that none waiting reads 0, not nothing.
        tenants = self.state.tenants()
        held, waiting = self.state.held_by_tenant(), self.state.waiting_by_tenant()
        self.meter.set("wfsched_batch_slots", self.state.slots)
        self.meter.set_each("wfsched_batch_slots_held", self.meter.per_tenant({t: held[t] for t in tenants}))
        self.meter.set_each("wfsched_batches_waiting", self.meter.per_tenant({t: waiting[t] for t in tenants}))


class TaskSlots:
    """One job run's side of the dispatcher: a slot per batch, given back when the batch ends.

    A `pipeline.SlotSource`. Its calls are sent without waiting for an answer, but `acquire`'s,
    which is the grant. It renews its lease every third of `slot_lease_s` while the job runs.
    """

    def __init__(self, dispatcher: Handle, tenant: str, holder: str, lease_s: float) -> None:
        self.dispatcher = dispatcher
        self.tenant = tenant
        self.holder = holder
        self._renew_every_s = lease_s / 3
        self._renewed_s = time.monotonic()
        self._ids = itertools.count()

    def gpus_per_task(self) -> float:
        ref: ray.ObjectRef[float] = self.dispatcher.gpus_per_task.remote()
        return ray.get(ref)

    def acquire(self, cost: float) -> Future[int | None]:
        ref: ray.ObjectRef[int | None] = self.dispatcher.acquire.remote(self.holder, next(self._ids), self.tenant, cost)
        return ref.future()

    def release(self, slot: int) -> None:
        self.dispatcher.release.remote(self.holder, slot)

    def keep_alive(self) -> None:
        now = time.monotonic()
        if now - self._renewed_s >= self._renew_every_s:
            self._renewed_s = now
            self.dispatcher.renew.remote(self.holder)

    def close(self) -> None:
        # The job is ending either way; an unanswered close is covered by the lease.
        with contextlib.suppress(Exception):
            self.dispatcher.close.remote(self.holder)


def task_slots(settings: Settings, tenant: str, job: str) -> TaskSlots:
    """Slots for one run of a job (`job` names it); the dispatcher is created on first use."""
    dispatcher = actors.get_or_create(DispatcherActor, actors.DISPATCHER_NAME, settings, on_head=True)
    return TaskSlots(dispatcher, tenant, f"{job}#{uuid.uuid4().hex[:8]}", settings.slot_lease_s)
