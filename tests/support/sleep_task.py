"""`sleep_batch`: a Ray task that holds its slot for a fixed time, in place of segmenting.

A module of its own that imports nothing of wfsched, so its workers start in a second (no torch).
"""

from __future__ import annotations

import time

import ray


@ray.remote
def sleep_batch(batch_s: float) -> tuple[float, float]:
    """Sleep `batch_s`; when it started and ended (Unix time)."""
    started = time.time()
    time.sleep(batch_s)
    return started, time.time()
