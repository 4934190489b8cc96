"""The tile-batch dispatcher's state: accelerator slots, who holds them, who waits, leases.

Plain Python, as `DispatcherActor` (dispatcher.py) holds it and unit tests drive it. Every change
returns the `Decisions` it led to (requests granted, requests dropped), and grants as many
waiting requests as there are free slots before it returns: no slot idles while a batch waits.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from wfsched.config import BatchOrder, Settings
from wfsched.control.batch_queue import BatchQueue, FairQueue, FifoQueue, SlotRequest

# Ray gives a task one CPU unless told otherwise, and segment_tiles asks for no other number.
CPUS_PER_TASK = 1.0
# A fractional GPU share that divides a GPU count exactly may land a hair below it in floating point.
_ROUNDING = 1e-9


def slot_count(cluster: Mapping[str, float], gpus_per_task: float) -> int:
    """Segmentation tasks the cluster runs at once: GPUs ÷ GPUs per task (CPUs bound it too, a task
    takes one), or CPUs when tasks take no GPU. At least 1, so that a cluster without what tasks ask
    for has them wait in Ray's queue (whose warning names the problem) rather than here silently."""
    cpu_slots = math.floor(cluster.get("CPU", 0.0) / CPUS_PER_TASK + _ROUNDING)
    if gpus_per_task > 0:
        return max(1, min(math.floor(cluster.get("GPU", 0.0) / gpus_per_task + _ROUNDING), cpu_slots))
    return max(1, cpu_slots)


def batch_queue(settings: Settings) -> BatchQueue:
    """The order `settings.batch_order` names, with the settings' tenant weights."""
    if settings.batch_order == BatchOrder.fifo:
        return FifoQueue()
    return FairQueue(dict(settings.tenant_weights))


@dataclass(frozen=True)
class Decisions:
    """What one change led to; the actor answers the waiting calls with it."""

    granted: list[SlotRequest] = field(default_factory=list)
    dropped: list[SlotRequest] = field(default_factory=list)
    """Taken out without a slot: their holder closed or its lease ran out."""


@dataclass
class _Holder:
    tenant: str
    renewed_s: float
    held: set[int] = field(default_factory=set)
    waiting: set[int] = field(default_factory=set)


class DispatcherState:
    """Slots handed to batches, one per batch, by the order of a `BatchQueue`.

    A holder is one job's fan-out: it asks a slot per batch and gives it back when the batch ends.
    Holders keep a lease: one not heard from for `lease_s` (its process died) loses its slots and
    its requests. A holder that closed is remembered for `lease_s`, so that a request of its that
    arrives after the close (calls to an async actor can overtake each other) is dropped.
    """

    def __init__(
        self, queue: BatchQueue, slots: int, lease_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._queue = queue
        self.slots = slots
        self.lease_s = lease_s
        self._clock = clock
        self._holders: dict[str, _Holder] = {}
        self._closed: dict[str, float] = {}  # holder → when it closed

    @property
    def held(self) -> int:
        return sum(len(holder.held) for holder in self._holders.values())

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def tenants(self) -> set[str]:
        """The tenants with a job that holds or asks for slots (or has not yet closed)."""
        return {holder.tenant for holder in self._holders.values()}

    def held_by_tenant(self) -> Counter[str]:
        held: Counter[str] = Counter()
        for holder in self._holders.values():
            held[holder.tenant] += len(holder.held)
        return +held

    def waiting_by_tenant(self) -> Counter[str]:
        return self._queue.waiting_by_tenant()

    def request(self, request: SlotRequest) -> Decisions:
        """A batch asks for a slot: granted now if one is free and the order says so, else it waits."""
        if request.holder in self._closed:
            return Decisions(dropped=[request])
        holder = self._renew(request.holder, request.tenant)
        if request.request_id in holder.held:  # asked again (a retried call): it has its slot
            return Decisions(granted=[request])
        if request.request_id not in holder.waiting:
            holder.waiting.add(request.request_id)
            self._queue.push(request)
        return Decisions(granted=self._fill())

    def release(self, holder_name: str, request_id: int) -> Decisions:
        """A batch ended: its slot goes to the next request in order."""
        holder = self._holders.get(holder_name)
        if holder is not None:
            holder.held.discard(request_id)
            holder.renewed_s = self._clock()
        return Decisions(granted=self._fill())

    def renew(self, holder_name: str) -> None:
        """The holder is alive: its lease starts again."""
        holder = self._holders.get(holder_name)
        if holder is not None:
            holder.renewed_s = self._clock()

    def close(self, holder_name: str) -> Decisions:
        """The holder ended: its requests are dropped, its slots go to others."""
        self._closed[holder_name] = self._clock()
        dropped = self._remove(holder_name)
        return Decisions(granted=self._fill(), dropped=dropped)

    def set_slots(self, slots: int) -> Decisions:
        """The cluster changed. Fewer slots than are held: no grant until enough come back."""
        self.slots = slots
        return Decisions(granted=self._fill())

    def expire(self) -> Decisions:
        """Holders not heard from for `lease_s` lose what they hold and ask; closes are forgotten."""
        now = self._clock()
        self._closed = {name: at for name, at in self._closed.items() if now - at < self.lease_s}
        expired = [name for name, holder in self._holders.items() if now - holder.renewed_s >= self.lease_s]
        dropped = [request for name in expired for request in self._remove(name)]
        return Decisions(granted=self._fill(), dropped=dropped)

    def _renew(self, holder_name: str, tenant: str) -> _Holder:
        holder = self._holders.get(holder_name)
        if holder is None:
            holder = self._holders[holder_name] = _Holder(tenant, self._clock())
        holder.renewed_s = self._clock()
        return holder

    def _remove(self, holder_name: str) -> list[SlotRequest]:
        """Forget the holder: its slots are free again; its requests, taken out of the queue."""
        self._holders.pop(holder_name, None)
        return self._queue.discard(holder_name)

    def _fill(self) -> list[SlotRequest]:
        """Grant waiting requests, in the queue's order, until no slot is free or none waits."""
        granted: list[SlotRequest] = []
        free = self.slots - self.held
        while free > 0:
            request = self._queue.pop()
            if request is None:
                break
            holder = self._holders[request.holder]
            holder.waiting.discard(request.request_id)
            holder.held.add(request.request_id)
            granted.append(request)
            free -= 1
        return granted
