"""A replica's one feed fans events out to its streams' subscriptions: theirs only, none missed."""

from __future__ import annotations

import asyncio

from wfsched.api.feed import SUBSCRIPTION_BUFFER, EventFeed
from wfsched.models.event import Event, EventType


class Hub:
    """ProgressActor's feed as the replica sees it: long-polls on everyone's events by global id."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Event]] = []
        self.changed = asyncio.Event()
        self.calls = 0

    def publish(self, user_id: str, workflow_id: str, seq: int) -> Event:
        event = Event(
            workflow_id=workflow_id, seq=seq, id=len(self.events) + 1, type=EventType.job_state, ts=0, data={}
        )
        self.events.append((user_id, event))
        self.changed.set()
        return event

    async def fetch(self, after_id: int, timeout_s: float) -> list[tuple[str, Event]]:
        self.calls += 1
        if len(self.events) <= after_id:
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), timeout_s)
            except TimeoutError:
                return []
        return self.events[after_id:]

    async def newest_id(self) -> int:
        return len(self.events)


def test_each_subscription_gets_its_workflow_or_its_users_events_only() -> None:
    async def scenario() -> None:
        hub = Hub()
        hub.publish("alice", "old", 1)  # before anyone subscribed: history, not the feed's
        feed = EventFeed(hub.fetch, hub.newest_id, poll_s=5)
        workflow = await feed.subscribe_workflow("w1")
        alice = await feed.subscribe_user("alice")
        hub.publish("alice", "w1", 1)
        hub.publish("bob", "w2", 1)
        hub.publish("alice", "w3", 1)
        assert [e.workflow_id for e in await workflow.take(1)] == ["w1"]
        assert await workflow.take(0.05) == []
        got = [e.workflow_id for e in await alice.take(1)]
        while len(got) < 2:
            got += [e.workflow_id for e in await alice.take(1)]
        assert got == ["w1", "w3"] and await alice.take(0.05) == []
        feed.unsubscribe(workflow)
        feed.unsubscribe(alice)
        assert feed.subscriptions == 0
        await feed.close()

    asyncio.run(scenario())


def test_many_streams_share_one_long_poll() -> None:
    async def scenario() -> None:
        hub = Hub()
        feed = EventFeed(hub.fetch, hub.newest_id, poll_s=5)
        subscriptions = [await feed.subscribe_workflow("w") for _ in range(500)]
        for seq in range(1, 11):
            hub.publish("alice", "w", seq)
            await asyncio.sleep(0)
        for subscription in subscriptions:
            seqs: list[int] = []
            while len(seqs) < 10:
                seqs += [e.seq for e in await subscription.take(1)]
            assert seqs == list(range(1, 11))
        assert hub.calls <= 12  # one long-poll a batch, not one per stream
        await feed.close()

    asyncio.run(scenario())


def test_a_subscription_that_falls_too_far_behind_says_so() -> None:
    async def scenario() -> None:
        hub = Hub()
        feed = EventFeed(hub.fetch, hub.newest_id, poll_s=5)
        slow = await feed.subscribe_workflow("w")
        for seq in range(1, SUBSCRIPTION_BUFFER + 2):
            hub.publish("alice", "w", seq)
        while not slow.overflowed:
            await asyncio.sleep(0.01)
        slow.drain()
        assert not slow.overflowed and await slow.take(0.01) == []
        await feed.close()

    asyncio.run(scenario())
