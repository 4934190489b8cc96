"""A segmentation's fan-out takes a slot for each batch from the dispatcher and always gives it back.

The dispatcher here is its real state (control/dispatcher_state.py) answering in-process, as its
actor answers over Ray; batches are tasks that find nothing (tests/support/batches.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import pytest

from tests.support.batches import empty_batch, row_of_tiles
from wfsched.control.batch_queue import FairQueue, SlotRequest
from wfsched.control.dispatcher_state import Decisions, DispatcherState
from wfsched.exceptions import JobCancelledError
from wfsched.imaging.checkpoint import TileCheckpoints
from wfsched.imaging.pipeline import FanOut, SubmitBatch, Submitted, run_batches
from wfsched.imaging.segment import SegmentedBatch, SegmentSpec
from wfsched.imaging.tiling import Tile


class LocalDispatcher:
    """DispatcherState behind a lock, answering each request's future as DispatcherActor does."""

    def __init__(self, slots: int) -> None:
        self.state = DispatcherState(FairQueue(), slots, lease_s=30.0)
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, int], Future[int | None]] = {}

    def slots(self, tenant: str, holder: str) -> LocalSlots:
        return LocalSlots(self, tenant, holder)

    def change(self, change: Callable[[], Decisions]) -> None:
        with self._lock:
            decisions = change()
        for request, granted in [(r, True) for r in decisions.granted] + [(r, False) for r in decisions.dropped]:
            self._answers.pop(request.key).set_result(request.request_id if granted else None)


class LocalSlots:
    def __init__(self, dispatcher: LocalDispatcher, tenant: str, holder: str) -> None:
        self.dispatcher, self.tenant, self.holder = dispatcher, tenant, holder
        self.asked = 0

    def acquire(self, cost: float) -> Future[int | None]:
        request = SlotRequest(self.holder, self.asked, self.tenant, cost)
        self.asked += 1
        answer: Future[int | None] = Future()
        self.dispatcher._answers[request.key] = answer
        self.dispatcher.change(lambda: self.dispatcher.state.request(request))
        return answer

    def release(self, slot: int) -> None:
        self.dispatcher.change(lambda: self.dispatcher.state.release(self.holder, slot))

    def keep_alive(self) -> None:
        self.dispatcher.state.renew(self.holder)

    def close(self) -> None:
        self.dispatcher.change(lambda: self.dispatcher.state.close(self.holder))


def run(tmp_path: Path, name: str, batches: int, submit: SubmitBatch, slots: LocalSlots, **fan_out: object) -> int:
    spec, tiles = row_of_tiles(batches)
    checkpoints = TileCheckpoints(tmp_path / name, spec.grid.fingerprint())
    options: dict[str, object] = {"batch_size": 1, "max_in_flight": 4, **fan_out}
    return run_batches(spec, tiles, submit, checkpoints, FanOut(slots=slots, **options))  # type: ignore[arg-type]


def finished(tiles: list[Tile]) -> Submitted:
    future: Future[SegmentedBatch] = Future()
    future.set_result(empty_batch(tiles))
    return Submitted(future=future, cancel=lambda: None)


def test_each_batch_goes_out_holding_a_slot_and_gives_it_back(tmp_path: Path) -> None:
    dispatcher = LocalDispatcher(slots=2)
    held_at_submit: list[int] = []

    def submit(spec: SegmentSpec, tiles: list[Tile]) -> Submitted:
        held_at_submit.append(dispatcher.state.held)
        return finished(tiles)

    assert run(tmp_path, "job", 12, submit, dispatcher.slots("A", "a")) == 12
    assert len(held_at_submit) == 12 and max(held_at_submit) <= 2 and min(held_at_submit) >= 1
    assert dispatcher.state.held == dispatcher.state.waiting == 0


def test_two_tenants_on_one_slot_take_turns(tmp_path: Path) -> None:
    dispatcher = LocalDispatcher(slots=1)
    order: list[str] = []
    small_asked = threading.Event()
    timers: list[threading.Timer] = []

    def submit_as(tenant: str) -> SubmitBatch:
        def submit(spec: SegmentSpec, tiles: list[Tile]) -> Submitted:
            order.append(tenant)
            future: Future[SegmentedBatch] = Future()
            # The big job's first batch ends only once the small job waits for a slot.
            wait_s = 0.0 if small_asked.is_set() or tenant == "B" else 0.5
            timer = threading.Timer(wait_s + 0.01, lambda: future.set_result(empty_batch(tiles)))
            timers.append(timer)
            timer.start()
            return Submitted(future=future, cancel=lambda: None)

        return submit

    big = threading.Thread(target=run, args=(tmp_path, "big", 10, submit_as("A"), dispatcher.slots("A", "big")))
    big.start()
    while not order:
        threading.Event().wait(0.01)
    small_slots = dispatcher.slots("B", "small")
    small = threading.Thread(target=run, args=(tmp_path, "small", 4, submit_as("B"), small_slots))
    small.start()
    while not dispatcher.state.waiting_by_tenant()["B"]:
        threading.Event().wait(0.01)
    small_asked.set()
    big.join(30)
    small.join(30)
    # The big job's second batch asked before the small job's first; then they alternate.
    assert "".join(order) == "AA" + "BA" * 4 + "A" * 4
    assert dispatcher.state.held == dispatcher.state.waiting == 0


def test_a_failed_batch_gives_its_slot_back_and_the_rest_are_withdrawn(tmp_path: Path) -> None:
    dispatcher = LocalDispatcher(slots=1)
    submitted: list[int] = []

    def fails_third(spec: SegmentSpec, tiles: list[Tile]) -> Submitted:
        submitted.append(tiles[0].index)
        if len(submitted) < 3:
            return finished(tiles)
        future: Future[SegmentedBatch] = Future()
        future.set_exception(RuntimeError("worker lost"))
        return Submitted(future=future, cancel=lambda: None)

    with pytest.raises(RuntimeError, match="worker lost"):
        run(tmp_path, "job", 8, fails_third, dispatcher.slots("A", "a"))
    assert submitted == [0, 1, 2]
    assert dispatcher.state.held == dispatcher.state.waiting == 0


def test_cancelling_stops_the_batches_then_lets_go_of_every_slot_asked_or_held(tmp_path: Path) -> None:
    dispatcher = LocalDispatcher(slots=2)
    stopped: list[int] = []
    cancel = threading.Event()

    def runs_until_cancelled(spec: SegmentSpec, tiles: list[Tile]) -> Submitted:
        future: Future[SegmentedBatch] = Future()

        def stop() -> None:
            stopped.append(tiles[0].index)
            future.set_result(empty_batch(tiles))

        cancel.set()  # the job is cancelled once a batch runs
        return Submitted(future=future, cancel=stop)

    def check_cancelled() -> None:
        if cancel.is_set():
            # The slots are still held while the batches run: given back only once they stopped.
            assert dispatcher.state.held == 2
            raise JobCancelledError("cancelled")

    with pytest.raises(JobCancelledError):
        run(tmp_path, "job", 8, runs_until_cancelled, dispatcher.slots("A", "a"), check_cancelled=check_cancelled)
    assert sorted(stopped) == [0, 1]
    assert dispatcher.state.held == dispatcher.state.waiting == 0


def test_a_request_dropped_while_the_job_stalled_is_asked_again(tmp_path: Path) -> None:
    class DropsFirst(LocalSlots):
        def acquire(self, cost: float) -> Future[int | None]:
            if self.asked == 0:
                self.asked += 1
                dropped: Future[int | None] = Future()
                dropped.set_result(None)
                return dropped
            return super().acquire(cost)

    dispatcher = LocalDispatcher(slots=1)
    ran: list[int] = []

    def submit(spec: SegmentSpec, tiles: list[Tile]) -> Submitted:
        ran.append(tiles[0].index)
        return finished(tiles)

    assert run(tmp_path, "job", 3, submit, DropsFirst(dispatcher, "A", "a"), max_in_flight=1) == 3
    assert sorted(ran) == [0, 1, 2]
