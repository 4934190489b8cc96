"""Whose batch goes next: the order in which waiting tile batches get accelerator slots.

Two orders behind one interface, `BatchQueue`: `FairQueue`, weighted deficit round-robin over
tenants (Shreedhar and Varghese, "Efficient fair queuing using deficit round robin", 1995), and
`FifoQueue`, first asked first served (what Ray's own task queue does). Plain Python: the
dispatcher's state holds one, unit tests drive them directly.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

# Costs and weights are floats: a deficit that should equal a cost may miss it by a rounding error.
_ROUNDING = 1e-9


@dataclass(frozen=True)
class SlotRequest:
    """One batch asking for one accelerator slot."""

    holder: str
    """The job run that asks (one segmentation's fan-out); it gives the slot back."""
    request_id: int
    """Unique within the holder."""
    tenant: str
    """Whose share the batch counts against: the job's user."""
    cost: float
    """What the batch is charged under fair order: its tiles."""

    @property
    def key(self) -> tuple[str, int]:
        return self.holder, self.request_id


class BatchQueue(Protocol):
    """Requests waiting for a slot, and which one gets the next."""

    def push(self, request: SlotRequest) -> None: ...

    def pop(self) -> SlotRequest | None:
        """The request to grant next, taken out; None when none waits."""

    def discard(self, holder: str) -> list[SlotRequest]:
        """Take out every request of `holder` (it ended, or its lease ran out); those taken out."""

    def __len__(self) -> int: ...

    def waiting_by_tenant(self) -> Counter[str]: ...


class FifoQueue:
    """First asked, first served, whoever asks."""

    def __init__(self) -> None:
        self._waiting: deque[SlotRequest] = deque()

    def push(self, request: SlotRequest) -> None:
        self._waiting.append(request)

    def pop(self) -> SlotRequest | None:
        return self._waiting.popleft() if self._waiting else None

    def discard(self, holder: str) -> list[SlotRequest]:
        gone = [request for request in self._waiting if request.holder == holder]
        if gone:
            self._waiting = deque(request for request in self._waiting if request.holder != holder)
        return gone

    def __len__(self) -> int:
        return len(self._waiting)

    def waiting_by_tenant(self) -> Counter[str]:
        return Counter(request.tenant for request in self._waiting)


class FairQueue:
    """Weighted deficit round-robin over the tenants that have requests waiting.

    Those tenants take turns in a ring. A turn adds `quantum × weight` to the tenant's deficit; the
    tenant is served while its next request's cost fits in its deficit, then the turn passes on.
    One request leaves per `pop`, so a turn may span several pops. A tenant with nothing left
    waiting leaves the ring and loses its deficit: no credit is saved up while idle, and a tenant
    that comes back joins at the end of the ring. Within a tenant, requests go in the order asked.

    The quantum grows to the largest cost asked, as DRR wants (quantum ≥ largest cost): then every
    turn of a tenant of weight ≥ 1 serves at least one request, and a pop is O(1) for such weights.
    """

    def __init__(self, weights: Mapping[str, float] | None = None, quantum: float = 1.0) -> None:
        self._weights = dict(weights or {})
        if any(weight <= 0 for weight in self._weights.values()):
            raise ValueError(f"tenant weights must be positive, got {self._weights}")
        self._quantum = quantum
        self._waiting: dict[str, deque[SlotRequest]] = {}
        self._ring: deque[str] = deque()
        self._deficit: dict[str, float] = {}
        # Whether the tenant at the head of the ring has had its quantum for the turn it is in.
        self._in_turn = False

    def push(self, request: SlotRequest) -> None:
        self._quantum = max(self._quantum, request.cost)
        waiting = self._waiting.get(request.tenant)
        if waiting is None:
            waiting = self._waiting[request.tenant] = deque()
            self._ring.append(request.tenant)
            self._deficit[request.tenant] = 0.0
        waiting.append(request)

    def pop(self) -> SlotRequest | None:
        while self._ring:
            tenant = self._ring[0]
            if not self._in_turn:
                self._deficit[tenant] += self._quantum * self._weights.get(tenant, 1.0)
                self._in_turn = True
            waiting = self._waiting[tenant]
            if waiting[0].cost <= self._deficit[tenant] + _ROUNDING:
                request = waiting.popleft()
                self._deficit[tenant] -= request.cost
                if not waiting:
                    self._leave(tenant)
                return request
            self._ring.rotate(-1)
            self._in_turn = False
        return None

    def discard(self, holder: str) -> list[SlotRequest]:
        gone: list[SlotRequest] = []
        for tenant, waiting in list(self._waiting.items()):
            if any(request.holder == holder for request in waiting):
                gone += [request for request in waiting if request.holder == holder]
                waiting = self._waiting[tenant] = deque(r for r in waiting if r.holder != holder)
                if not waiting:
                    self._leave(tenant)
        return gone

    def __len__(self) -> int:
        return sum(len(waiting) for waiting in self._waiting.values())

    def waiting_by_tenant(self) -> Counter[str]:
        return Counter({tenant: len(waiting) for tenant, waiting in self._waiting.items()})

    def _leave(self, tenant: str) -> None:
        if self._ring[0] == tenant:
            self._ring.popleft()
            self._in_turn = False
        else:
            self._ring.remove(tenant)
        del self._waiting[tenant], self._deficit[tenant]
