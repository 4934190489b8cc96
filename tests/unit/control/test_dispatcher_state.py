"""The dispatcher's slots: never idle while a batch waits, granted in fair order, never leaked."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from wfsched.config import BatchOrder, Settings
from wfsched.control.batch_queue import FairQueue, FifoQueue, SlotRequest
from wfsched.control.dispatcher_state import Decisions, DispatcherState, batch_queue, slot_count

LEASE_S = 30.0


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> Clock:
    return Clock()


def fair(slots: int, clock: Clock) -> DispatcherState:
    return DispatcherState(FairQueue(), slots, LEASE_S, clock)


def asked(state: DispatcherState, holder: str, tenant: str, ids: range) -> list[SlotRequest]:
    granted = []
    for request_id in ids:
        granted += state.request(SlotRequest(holder, request_id, tenant, 1.0)).granted
    return granted


def test_slots_go_round_the_tenants_as_batches_end(clock: Clock) -> None:
    state = fair(2, clock)
    first = asked(state, "big", "A", range(100))  # the big job asks first and takes both slots
    asked(state, "small-1", "B", range(20))
    asked(state, "small-2", "C", range(20))
    running = list(first)
    order = []
    for _ in range(12):  # batches end in the order they started, each slot to the next in turn
        ended = running.pop(0)
        granted = state.release(ended.holder, ended.request_id).granted
        assert len(granted) == 1
        running += granted
        order.append(granted[0].tenant)
    assert "".join(order) == "ABCABCABCABC"
    assert state.held == 2 and state.held_by_tenant() == Counter({"B": 1, "C": 1})


def test_no_slot_idles_while_a_batch_waits_and_none_is_granted_twice(clock: Clock) -> None:
    """Random asks, batch ends, closes, lease expiries and cluster changes; the invariants after each."""
    for seed in range(300):
        rng = random.Random(seed)
        queue = rng.choice([FairQueue({"t1": 2.0}), FifoQueue()])
        state = DispatcherState(queue, rng.randint(1, 4), LEASE_S, clock)
        granted: set[tuple[str, int]] = set()
        running: set[tuple[str, int]] = set()
        for step in range(80):
            holder = f"h{rng.randint(0, 5)}"
            action = rng.choice(["ask", "ask", "ask", "end", "end", "close", "slots", "time"])
            if action == "ask":
                decisions = state.request(SlotRequest(holder, step, f"t{rng.randint(0, 2)}", rng.randint(1, 4)))
            elif action == "end" and running:
                ended = rng.choice(sorted(running))
                running.discard(ended)
                decisions = state.release(*ended)
            elif action == "close":
                decisions = state.close(holder)
            elif action == "slots":
                decisions = state.set_slots(rng.randint(0, 5))
            else:
                clock.now_s += rng.choice([1.0, LEASE_S / 2])
                decisions = state.expire()
            now_granted = {request.key for request in decisions.granted}
            assert not now_granted & granted, f"seed {seed}: a batch granted a slot twice"
            granted |= now_granted
            running |= now_granted
            assert state.waiting == 0 or state.held >= state.slots, f"seed {seed}: a slot idles while a batch waits"
            assert state.held == sum(state.held_by_tenant().values())


def test_a_closed_job_lets_go_of_its_slots_and_requests_and_a_late_request_is_dropped(clock: Clock) -> None:
    state = fair(2, clock)
    asked(state, "a", "A", range(5))
    asked(state, "b", "B", range(5))
    closed = state.close("a")
    assert [r.key for r in closed.granted] == [("b", 0), ("b", 1)]
    assert sorted(r.request_id for r in closed.dropped) == [2, 3, 4]
    # A request the closed job sent before closing that arrives after the close.
    assert state.request(SlotRequest("a", 9, "A", 1.0)).dropped
    assert state.held_by_tenant() == Counter({"B": 2}) and state.waiting_by_tenant() == Counter({"B": 3})
    assert state.tenants() == {"B"}


def test_a_job_whose_process_died_loses_its_slots_when_its_lease_runs_out(clock: Clock) -> None:
    state = fair(2, clock)
    asked(state, "dies", "A", range(5))
    asked(state, "lives", "B", range(5))
    for _ in range(2):
        clock.now_s += LEASE_S / 3
        state.renew("lives")
        assert state.expire() == Decisions()
    clock.now_s += LEASE_S / 3  # "dies" last heard from LEASE_S ago, "lives" a third of it ago
    expired = state.expire()
    assert sorted(r.request_id for r in expired.dropped) == [2, 3, 4]
    assert [r.key for r in expired.granted] == [("lives", 0), ("lives", 1)]
    assert state.held_by_tenant() == Counter({"B": 2})
    # A job whose lease ran out while it stalled asks again and is served again.
    assert state.request(SlotRequest("dies", 5, "A", 1.0)) == Decisions()
    assert state.waiting_by_tenant() == Counter({"B": 3, "A": 1})


def test_a_closed_job_is_forgotten_after_a_lease(clock: Clock) -> None:
    state = fair(1, clock)
    state.close("a")
    clock.now_s += LEASE_S
    state.expire()
    assert state.request(SlotRequest("a", 0, "A", 1.0)).granted


def test_slots_follow_the_cluster(clock: Clock) -> None:
    state = fair(2, clock)
    granted = asked(state, "a", "A", range(6))
    assert len(granted) == 2
    assert len(state.set_slots(4).granted) == 2  # a node joined
    assert state.set_slots(1) == Decisions()  # two left: no grant until three batches end
    for request_id in range(3):
        assert state.release("a", request_id) == Decisions()
    assert [r.request_id for r in state.release("a", 3).granted] == [4]


def test_a_retried_request_is_not_queued_twice(clock: Clock) -> None:
    state = fair(1, clock)
    first = SlotRequest("a", 0, "A", 1.0)
    assert state.request(first).granted == [first]
    assert state.request(first).granted == [first]  # asked again: it still has its slot
    assert state.held == 1
    second = SlotRequest("a", 1, "A", 1.0)
    state.request(second)
    state.request(second)
    assert state.waiting == 1


@pytest.mark.parametrize(
    ("cluster", "gpus_per_task", "slots"),
    [
        ({"CPU": 64.0, "GPU": 8.0}, 1.0, 8),
        ({"CPU": 64.0, "GPU": 8.0}, 0.25, 32),
        ({"CPU": 64.0, "GPU": 3.0}, 0.3, 10),  # 3 / 0.3 is 9.999… in floating point
        ({"CPU": 4.0, "GPU": 8.0}, 0.5, 4),  # every task takes a CPU too
        ({"CPU": 16.0}, 0.0, 16),
        ({"CPU": 16.0}, 1.0, 1),  # GPUs asked for and none there: Ray's queue says why
        ({}, 0.0, 1),
    ],
)
def test_slots_are_the_tasks_that_fit_at_once(cluster: dict[str, float], gpus_per_task: float, slots: int) -> None:
    assert slot_count(cluster, gpus_per_task) == slots


def test_the_order_and_weights_come_from_the_settings() -> None:
    assert isinstance(batch_queue(Settings(batch_order=BatchOrder.fifo)), FifoQueue)
    queue = batch_queue(Settings(tenant_weights="A=3"))
    assert isinstance(queue, FairQueue)
    for tenant in ("A", "B"):
        for request_id in range(10):
            queue.push(SlotRequest(tenant, request_id, tenant, 1.0))
    assert [queue.pop().tenant for _ in range(8)] == list("AAABAAAB")  # type: ignore[union-attr]
