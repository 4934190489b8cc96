"""The progress fan-out: recent events per workflow and long-poll waiters. No Ray here.

Events are persisted by the scheduler before they are published here; this keeps a window of
recent ones in memory and reads older ones (or ones a lost publish missed) back from the store.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable

from wfsched.models.event import Event

# Events kept in memory per workflow; older ones are read from the store.
EVENTS_PER_WORKFLOW = 512
# Workflows kept in memory; the least recently touched is dropped first.
WORKFLOWS_IN_MEMORY = 2_000


class ProgressState:
    """Per-workflow event windows with waiters; `wait` is the long-poll of Serve's LongPollHost."""

    def __init__(self, read_after: Callable[[str, int], list[Event]]) -> None:
        self._read_after = read_after
        self._events: OrderedDict[str, list[Event]] = OrderedDict()
        self._changed: dict[str, asyncio.Event] = {}
        self._waiters: dict[str, int] = {}

    @property
    def waiters(self) -> int:
        """How many long-polls wait now (a test checks that disconnects leave none behind)."""
        return sum(self._waiters.values())

    def publish(self, events: list[Event]) -> None:
        for event in events:
            window = self._window(event.workflow_id)
            if window and event.seq <= window[-1].seq:
                continue  # a re-publish after a restart
            window.append(event)
            del window[:-EVENTS_PER_WORKFLOW]
            changed = self._changed.pop(event.workflow_id, None)
            if changed is not None:
                changed.set()

    async def wait(self, workflow_id: str, after_seq: int, timeout_s: float) -> list[Event]:
        """Events after `after_seq`: at once if there are any, else when one comes or at timeout."""
        events = self._after(workflow_id, after_seq)
        if events:
            return events
        changed = self._changed.setdefault(workflow_id, asyncio.Event())
        self._waiters[workflow_id] = self._waiters.get(workflow_id, 0) + 1
        try:
            await asyncio.wait_for(changed.wait(), timeout_s)
        except TimeoutError:
            # Nothing was published: look in the store, which a lost publish cannot skip.
            return self._from_store(workflow_id, after_seq)
        finally:
            self._waiters[workflow_id] -= 1
            if not self._waiters[workflow_id]:
                del self._waiters[workflow_id]
                if self._changed.get(workflow_id) is changed:
                    del self._changed[workflow_id]
        return self._after(workflow_id, after_seq)

    def _after(self, workflow_id: str, after_seq: int) -> list[Event]:
        window = self._events.get(workflow_id)
        if window and window[0].seq <= after_seq + 1:
            return [e for e in window if e.seq > after_seq]
        return self._from_store(workflow_id, after_seq)

    def _from_store(self, workflow_id: str, after_seq: int) -> list[Event]:
        events = self._read_after(workflow_id, after_seq)
        if events:
            self.publish(events)
        return events

    def _window(self, workflow_id: str) -> list[Event]:
        window = self._events.pop(workflow_id, None)
        if window is None:
            window = []
        self._events[workflow_id] = window
        while len(self._events) > WORKFLOWS_IN_MEMORY:
            self._events.popitem(last=False)
        return window
