"""The progress fan-out's hub: everyone's recent events, in order, for the API replicas. No Ray here.

Events are persisted by the scheduler before they are published here. Each API replica holds one
long-poll on `feed` (everyone's events after a global id) and fans them out to its own open
streams, so the work here grows with events and replicas, not with watchers. A stream's history
(what it missed before it opened) comes once from `wait`/`wait_user` with no wait: an unfinished
workflow's recent events are kept in memory; a finished one's, older ones and a user's are read
back from the store, as is
anything the feed's memory no longer holds or a lost publish missed. The long-polls are Serve's
LongPollHost pattern: a caller passes the position it has and gets what is newer at once, or
waits for it.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import OrderedDict
from collections.abc import Callable

from wfsched.models.event import Event, EventType

# Events kept in memory per unfinished workflow; older ones are read from the store.
EVENTS_PER_WORKFLOW = 512
# Unfinished workflows kept in memory; the least recently touched is dropped first. A finished
# workflow's events are read from the store, so memory follows the work in hand, not the history.
WORKFLOWS_IN_MEMORY = 2_000
# Everyone's latest events, for the replicas' feeds: a replica further behind reads the store.
FEED_EVENTS = 50_000
# Events one feed call returns at most (a replica far behind catches up in several).
FEED_BATCH = 5_000
_FEED = "feed"

ReadAfter = Callable[[str, int], list[Event]]
ReadFeedAfter = Callable[[int, int], list[tuple[str, Event]]]
Owned = tuple[str, Event]
"""An event with its owner's user id."""


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
    def __init__(
        self, read_after: ReadAfter, read_user_after: ReadAfter, read_feed_after: ReadFeedAfter, last_event_id: int = 0
    ) -> None:
        self._read_after = read_after
        self._read_user_after = read_user_after
        self._read_feed_after = read_feed_after
        self._events: OrderedDict[str, list[Event]] = OrderedDict()
        self._feed: list[Owned] = []
        self._feed_ids: list[int] = []
        # The feed holds ids up to here without a gap; `_early` the ones that came ahead of it.
        self._feed_base = last_event_id
        self._early: dict[int, Owned] = {}
        self._workflow_waiters = _Waiters()
        self._user_waiters = _Waiters()
        self._feed_waiters = _Waiters()

    @property
    def waiters(self) -> int:
        """How many stream long-polls wait now (a test checks that disconnects leave none behind)."""
        return self._workflow_waiters.total + self._user_waiters.total

    @property
    def feed_waiters(self) -> int:
        """How many replica feeds wait now: one per API replica, whatever its streams."""
        return self._feed_waiters.total

    @property
    def workflows_in_memory(self) -> int:
        return len(self._events)

    @property
    def last_feed_id(self) -> int:
        """The newest id up to which the feed has every event (what the store held at the start, if none since)."""
        return self._feed_base

    async def feed(self, after_id: int, timeout_s: float) -> list[Owned]:
        """Everyone's events after the global `after_id`, in id order: at once if any, else when
        one comes or at the timeout (then the store is asked, for what a lost publish missed)."""
        events = self._feed_after(after_id)
        if events:
            return events
        if await self._feed_waiters.wait(_FEED, timeout_s):
            return self._feed_after(after_id)
        if self._early:
            self._fill_gap()  # quiet for a whole timeout with events held back: one is lost
        return self._read_feed_after(after_id, FEED_BATCH)

    def _feed_after(self, after_id: int) -> list[Owned]:
        if self._feed_ids and self._feed_ids[0] <= after_id + 1:
            start = bisect.bisect_right(self._feed_ids, after_id)
            return self._feed[start : start + FEED_BATCH]
        if self._feed_ids and after_id >= self._feed_ids[-1]:
            return []
        return self._read_feed_after(after_id, FEED_BATCH)  # older than memory holds, or none yet

    def _remember_in_feed(self, user_id: str, event: Event) -> None:
        """Keep the feed's ids contiguous. Ids come from one writer without gaps, but calls to an
        async actor may run out of order: an event ahead of a missing one waits for it, so a
        replica that read past an id never misses an event that arrives late."""
        if event.id is None or event.id <= self._feed_base or event.id in self._early:
            return  # not persisted (cannot be placed), or already here
        self._early[event.id] = (user_id, event)
        self._take_contiguous()
        if len(self._feed) > 2 * FEED_EVENTS:  # trimmed in halves: amortised O(1) a publish
            del self._feed[:-FEED_EVENTS], self._feed_ids[:-FEED_EVENTS]
        if len(self._early) > FEED_BATCH:
            self._fill_gap()

    def _fill_gap(self) -> None:
        """An id that never came (a publish lost to a restart): take what follows from the store."""
        for user_id, event in self._read_feed_after(self._feed_base, FEED_BATCH):
            self._early.setdefault(event.id or 0, (user_id, event))
        self._early = {i: e for i, e in self._early.items() if i > self._feed_base}
        self._take_contiguous()

    def _take_contiguous(self) -> None:
        """Move the events that now follow the feed's newest without a gap from `_early` into it."""
        while self._feed_base + 1 in self._early:
            self._feed_base += 1
            self._feed.append(self._early.pop(self._feed_base))
            self._feed_ids.append(self._feed_base)

    def publish(self, events: list[tuple[str, Event]]) -> None:
        """Take events (each with its owner) that the store already holds; wake their waiters."""
        for user_id, event in events:
            if event.type == EventType.workflow_finished:
                self._events.pop(event.workflow_id, None)
            else:
                self._remember(event)
            self._remember_in_feed(user_id, event)
            self._workflow_waiters.wake(event.workflow_id)
            self._user_waiters.wake(user_id)
        self._feed_waiters.wake(_FEED)

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
        return self._read_after(workflow_id, after_seq)

    def _remember(self, event: Event) -> None:
        window = self._events.pop(event.workflow_id, [])
        self._events[event.workflow_id] = window
        if window and event.seq <= window[-1].seq:
            return  # already here: a re-publish
        if window and event.seq != window[-1].seq + 1:
            window.clear()  # a gap: keep only what is contiguous; the store has the rest
        window.append(event)
        del window[:-EVENTS_PER_WORKFLOW]
        while len(self._events) > WORKFLOWS_IN_MEMORY:
            self._events.popitem(last=False)
