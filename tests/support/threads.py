"""Calls made at the same moment from several threads, for the tests of races."""

from __future__ import annotations

import threading
from collections.abc import Callable


def errors_at_once(call: Callable[[], object], threads: int = 6) -> list[Exception]:
    """Run `call` in `threads` threads released together; the exceptions it raised in them."""
    start = threading.Barrier(threads)
    errors: list[Exception] = []

    def run() -> None:
        start.wait()
        try:
            call()
        except Exception as error:
            errors.append(error)

    running = [threading.Thread(target=run) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    return errors
