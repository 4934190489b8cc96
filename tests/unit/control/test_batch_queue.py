"""Whose batch goes next: weighted deficit round-robin over tenants, and first come first served."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from wfsched.control.batch_queue import BatchQueue, FairQueue, FifoQueue, SlotRequest

_ids = itertools.count()


def ask(queue: BatchQueue, tenant: str, n: int = 1, cost: float = 1.0, holder: str | None = None) -> None:
    for _ in range(n):
        queue.push(SlotRequest(holder or f"{tenant}-job", next(_ids), tenant, cost))


def order(queue: BatchQueue, n: int | None = None) -> str:
    """The tenants of the next `n` requests popped (all of them without `n`), as one string."""
    popped = []
    while n is None or len(popped) < n:
        request = queue.pop()
        if request is None:
            break
        popped.append(request.tenant)
    return "".join(popped)


def test_a_small_job_interleaves_with_a_big_one_instead_of_waiting_behind_it() -> None:
    queue = FairQueue()
    ask(queue, "A", 6)  # the big job asked first
    ask(queue, "B", 3)
    ask(queue, "C", 3)
    assert order(queue) == "ABCABCABCAAA"


def test_first_come_first_served_serves_the_big_job_first() -> None:
    queue = FifoQueue()
    ask(queue, "A", 6)
    ask(queue, "B", 3)
    ask(queue, "C", 3)
    assert order(queue) == "AAAAAABBBCCC"


def test_tenants_joining_while_one_is_served_take_their_turns_at_once() -> None:
    queue = FairQueue()
    ask(queue, "A", 100)
    assert order(queue, 3) == "AAA"
    ask(queue, "B", 2)
    ask(queue, "C", 2)
    assert order(queue, 7) == "BCABCAA"


def test_weights_set_each_tenants_share() -> None:
    queue = FairQueue({"A": 2.0, "C": 0.5})
    ask(queue, "A", 100)
    ask(queue, "B", 100)
    ask(queue, "C", 100)
    served = Counter(order(queue, 70))
    assert (served["A"], served["B"], served["C"]) == (40, 20, 10)


def test_the_share_is_counted_in_tiles_not_batches() -> None:
    queue = FairQueue()
    ask(queue, "A", 10, cost=4.0)  # batches of 4 tiles
    ask(queue, "B", 40, cost=1.0)  # batches of 1 tile
    assert order(queue, 10) == "ABBBBABBBB"


def test_a_tenant_that_leaves_keeps_no_credit_and_comes_back_at_the_end_of_the_ring() -> None:
    queue = FairQueue()
    ask(queue, "X", 1, cost=4.0)  # the quantum is now 4 tiles
    ask(queue, "A", 1)
    ask(queue, "B", 20)
    assert order(queue, 3) == "XAB"
    # A left with 3 tiles of credit unused. Back with 8 batches, it waits for B's turn to end, and
    # its own turn gives it 4 tiles, not 7.
    ask(queue, "A", 8)
    assert order(queue, 15) == "BBBAAAABBBBAAAA"


def test_withdrawn_requests_leave_the_others_turns_as_they_were() -> None:
    queue = FairQueue()
    ask(queue, "A", 4, holder="a1")
    ask(queue, "B", 2, holder="b1")
    ask(queue, "B", 2, holder="b2")
    ask(queue, "C", 4, holder="c1")
    assert order(queue, 2) == "AB"
    gone = queue.discard("b1")
    assert [r.holder for r in gone] == ["b1"]  # b1's other request was served already
    assert queue.waiting_by_tenant() == Counter({"A": 3, "B": 2, "C": 4})
    assert queue.discard("c1") and queue.waiting_by_tenant() == Counter({"A": 3, "B": 2})
    assert order(queue) == "ABABA"
    assert len(queue) == 0 and queue.pop() is None


def test_fifo_withdraws_a_holders_requests_and_keeps_the_rest_in_order() -> None:
    queue = FifoQueue()
    ask(queue, "A", 2, holder="a")
    ask(queue, "B", 2, holder="b")
    ask(queue, "A", 1, holder="a2")
    assert len(queue.discard("a")) == 2
    assert queue.waiting_by_tenant() == Counter({"B": 2, "A": 1})
    assert order(queue) == "BBA"


def test_weights_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        FairQueue({"A": 0.0})
