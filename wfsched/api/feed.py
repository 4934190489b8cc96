"""One API replica's subscription to everyone's events, fanned out in-process to its open streams.

The replica holds a single long-poll on ProgressActor's feed (resumable by global event id) and
hands each event to the subscriptions of its workflow and of its owner. So ProgressActor's work
grows with the events and the replicas, not with the watchers, and no stream polls anything on
its own. A stream subscribes first, then reads its history once (`Service` does), then takes what
the feed brings, dropping what the history already gave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from wfsched.models.event import Event

log = logging.getLogger(__name__)

# Events one subscription holds unread; a stream that falls further behind re-reads its history.
SUBSCRIPTION_BUFFER = 10_000
# After a failed feed call (ProgressActor restarting), wait this long before the next.
RETRY_S = 1.0

FetchFeed = Callable[[int, float], Awaitable[list[tuple[str, Event]]]]
"""(after global id, timeout) → everyone's events after it, each with its owner's user id."""


class Subscription:
    """The events of one workflow or one user, as this replica's feed brings them."""

    def __init__(self, key: str) -> None:
        self.key = key
        # A deque and an Event, not an asyncio.Queue: a get() cancelled by its timeout at the
        # moment an item arrives can lose that item (wait_for's race); waiting on an Event can't.
        self._events: deque[Event] = deque()
        self._arrived = asyncio.Event()
        self.overflowed = False
        """Events were dropped: the stream must read its history again from where it is."""

    def offer(self, event: Event) -> None:
        if len(self._events) >= SUBSCRIPTION_BUFFER:
            self.overflowed = True
            return
        self._events.append(event)
        self._arrived.set()

    async def take(self, timeout_s: float) -> list[Event]:
        """Every event waiting (a stream writes them in one go), or none if none came within
        `timeout_s` (a heartbeat's turn)."""
        if not self._events:
            self._arrived.clear()
            # `asyncio.timeout`, not `wait_for`: no task per wait (at 1,000 streams that was ~15 %
            # of a replica's time).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._arrived.wait()
        taken = list(self._events)
        self._events.clear()
        return taken

    def drain(self) -> None:
        """Forget what is buffered (after an overflow, the history read replaces it)."""
        self._events.clear()
        self.overflowed = False


class EventFeed:
    """The replica's one feed. Started by the first subscription; runs until `close`."""

    def __init__(self, fetch: FetchFeed, newest_id: Callable[[], Awaitable[int]], poll_s: float) -> None:
        self._fetch = fetch
        self._newest_id = newest_id
        self._poll_s = poll_s
        self._by_workflow: dict[str, set[Subscription]] = {}
        self._by_user: dict[str, set[Subscription]] = {}
        self._after_id: int | None = None
        self._pump: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()

    @property
    def subscriptions(self) -> int:
        return sum(map(len, self._by_workflow.values())) + sum(map(len, self._by_user.values()))

    async def subscribe_workflow(self, workflow_id: str) -> Subscription:
        return await self._subscribe(self._by_workflow, workflow_id)

    async def subscribe_user(self, user_id: str) -> Subscription:
        return await self._subscribe(self._by_user, user_id)

    def unsubscribe(self, subscription: Subscription) -> None:
        for table in (self._by_workflow, self._by_user):
            subscribers = table.get(subscription.key)
            if subscribers is not None and subscription in subscribers:
                subscribers.discard(subscription)
                if not subscribers:
                    del table[subscription.key]

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    async def _subscribe(self, table: dict[str, set[Subscription]], key: str) -> Subscription:
        """Registered before the feed runs on, so nothing published after this returns is missed."""
        subscription = Subscription(key)
        table.setdefault(key, set()).add(subscription)
        try:
            await self._start()
        except BaseException:
            self.unsubscribe(subscription)
            raise
        return subscription

    async def _start(self) -> None:
        async with self._starting:
            if self._pump is None:
                # Only events newer than now come through the feed; older ones are history.
                self._after_id = await self._newest_id()
                self._pump = asyncio.get_running_loop().create_task(self._pump_forever())

    async def _pump_forever(self) -> None:
        while True:
            assert self._after_id is not None
            try:
                events = await self._fetch(self._after_id, self._poll_s)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("the event feed failed; trying again in %.0f s", RETRY_S, exc_info=True)
                await asyncio.sleep(RETRY_S)
                continue
            for user_id, event in events:
                for subscription in (*self._by_workflow.get(event.workflow_id, ()), *self._by_user.get(user_id, ())):
                    subscription.offer(event)
                if event.id is not None:
                    self._after_id = max(self._after_id, event.id)
