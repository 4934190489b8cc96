"""Stopping a segmentation's batches: cancel, a grace period, then force only those still running."""

from __future__ import annotations

import functools
import time
from concurrent.futures import Future

from wfsched.imaging.pipeline import Submitted, stop_batches
from wfsched.imaging.segment import SegmentedBatch


def test_stopping_forces_only_the_batches_still_running_after_the_grace_period() -> None:
    stops: Future[SegmentedBatch] = Future()
    ignores: Future[SegmentedBatch] = Future()
    forced: list[str] = []

    def force(name: str, future: Future[SegmentedBatch]) -> None:
        forced.append(name)
        future.set_exception(RuntimeError("killed"))

    batches = [
        Submitted(
            future=stops,
            cancel=lambda: stops.set_result(SegmentedBatch([])),
            force_cancel=lambda: force("stops", stops),
        ),
        Submitted(future=ignores, cancel=lambda: None, force_cancel=lambda: force("ignores", ignores)),
    ]
    started_s = time.monotonic()
    stop_batches(batches, grace_s=0.3)
    assert time.monotonic() - started_s >= 0.3  # the grace period was given
    assert forced == ["ignores"]
    assert stops.done() and ignores.done()


def test_stopping_batches_that_all_stop_at_once_does_not_wait() -> None:
    futures: list[Future[SegmentedBatch]] = [Future(), Future()]
    batches = [Submitted(future=f, cancel=functools.partial(f.set_result, SegmentedBatch([]))) for f in futures]
    started_s = time.monotonic()
    stop_batches(batches, grace_s=60)
    assert time.monotonic() - started_s < 30
