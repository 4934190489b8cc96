"""The progress fan-out: recent events per workflow and long-poll waiters. No Ray here.

Events are persisted by the scheduler before they are published here. A workflow's recent events
are kept in memory; older ones, a user's stream of all their workflows, and anything a lost
publish missed are read back from the store. `wait` is Serve's LongPollHost pattern: a caller
passes the position it has and gets what is newer at once, or waits for it.
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

ReadAfter = Callable[[str, int], list[Event]]


class _Waiters:
    """Long-poll waiters keyed by workflow or user: woken on publish, gone when none waits."""

    def __init__(self) -> None:
        self._changed: dict[str, asyncio.Event] = {}
        self._count: dict[str, int] = {}

    @property
    def total(self) -> int:
        return sum(self._count.values())

    def wake(self, key: str) -> None:
        changed = self._changed.pop(key, None)
        if changed is not None:
            changed.set()

    async def wait(self, key: str, timeout_s: float) -> bool:
        """True if woken, False at the timeout; a cancelled wait leaves nothing behind either."""
        changed = self._changed.setdefault(key, asyncio.Event())
        self._count[key] = self._count.get(key, 0) + 1
        try:
            await asyncio.wait_for(changed.wait(), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            self._count[key] -= 1
            if not self._count[key]:
                del self._count[key]
                if self._changed.get(key) is changed:
                    del self._changed[key]


class ProgressState:
    def __init__(self, read_after: ReadAfter, read_user_after: ReadAfter) -> None:
        self._read_after = read_after
        self._read_user_after = read_user_after
        self._events: OrderedDict[str, list[Event]] = OrderedDict()
        self._workflow_waiters = _Waiters()
        self._user_waiters = _Waiters()

    @property
    def waiters(self) -> int:
        """How many long-polls wait now (a test checks that disconnects leave none behind)."""
        return self._workflow_waiters.total + self._user_waiters.total

    @property
    def workflows_in_memory(self) -> int:
        return len(self._events)

    def publish(self, events: list[tuple[str, Event]]) -> None:
        """Take events (each with its owner) that the store already holds; wake their waiters."""
        for user_id, event in events:
            self._remember([event])
            self._workflow_waiters.wake(event.workflow_id)
            self._user_waiters.wake(user_id)

    async def wait(self, workflow_id: str, after_seq: int, timeout_s: float) -> list[Event]:
        """A workflow's events after `after_seq`: at once if any, else when one comes or at timeout."""
        events = self._after(workflow_id, after_seq)
        if events:
            return events
        await self._workflow_waiters.wait(workflow_id, timeout_s)
        # Woken or not, look again: at a timeout the store catches what a lost publish missed.
        return self._after(workflow_id, after_seq)

    async def wait_user(self, user_id: str, after_id: int, timeout_s: float) -> list[Event]:
        """All of a user's events after the global `after_id`, the same way."""
        events = self._read_user_after(user_id, after_id)
        if events:
            return events
        await self._user_waiters.wait(user_id, timeout_s)
        return self._read_user_after(user_id, after_id)

    def _after(self, workflow_id: str, after_seq: int) -> list[Event]:
        window = self._events.get(workflow_id)
        if window and window[0].seq <= after_seq + 1:
            return [e for e in window if e.seq > after_seq]
        events = self._read_after(workflow_id, after_seq)
        self._remember(events)
        return events

    def _remember(self, events: list[Event]) -> None:
        for event in events:
            window = self._events.pop(event.workflow_id, [])
            self._events[event.workflow_id] = window
            if window and event.seq <= window[-1].seq:
                continue  # already here: a re-publish, or read back from the store
            if window and event.seq != window[-1].seq + 1:
                window.clear()  # a gap: keep only what is contiguous; the store has the rest
            window.append(event)
            del window[:-EVENTS_PER_WORKFLOW]
        while len(self._events) > WORKFLOWS_IN_MEMORY:
            self._events.popitem(last=False)
