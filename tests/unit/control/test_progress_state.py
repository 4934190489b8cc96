"""The long-poll: returns at once when stale, waits otherwise, falls back to the store, cleans up."""

from __future__ import annotations

import asyncio
from pathlib import Path

from wfsched.control.progress_state import EVENTS_PER_WORKFLOW, ProgressState
from wfsched.models.event import Event, EventType
from wfsched.store.runs import SqlRunStore


def event(seq: int, workflow_id: str = "w") -> Event:
    return Event(workflow_id=workflow_id, seq=seq, type=EventType.job_state, ts=float(seq), data={"n": seq})


def test_wait_returns_at_once_when_the_caller_is_behind() -> None:
    state = ProgressState(lambda wf, after: [], lambda user, after: [], lambda after, limit: [])
    state.publish([("u", event(1)), ("u", event(2))])
    assert [e.seq for e in asyncio.run(state.wait("w", 0, 5))] == [1, 2]
    assert [e.seq for e in asyncio.run(state.wait("w", 1, 5))] == [2]


def test_wait_wakes_on_publish_and_leaves_no_waiter_behind() -> None:
    state = ProgressState(lambda wf, after: [], lambda user, after: [], lambda after, limit: [])

    async def scenario() -> list[int]:
        waiter = asyncio.create_task(state.wait("w", 0, 10))
        await asyncio.sleep(0.01)
        assert state.waiters == 1
        state.publish([("u", event(1))])
        return [e.seq for e in await waiter]

    assert asyncio.run(scenario()) == [1]
    assert state.waiters == 0


def test_a_timed_out_or_cancelled_wait_leaves_nothing_behind() -> None:
    state = ProgressState(lambda wf, after: [], lambda user, after: [], lambda after, limit: [])

    async def scenario() -> None:
        assert await state.wait("w", 0, 0.01) == []
        task = asyncio.create_task(state.wait("w", 0, 10))
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert state.waiters == 0


def test_old_events_and_missed_publishes_come_from_the_store(tmp_path: Path) -> None:
    store = SqlRunStore(tmp_path / "db")
    last = EVENTS_PER_WORKFLOW + 50
    store.save(events=[("u", event(i)) for i in range(1, last + 1)])
    state = ProgressState(store.events_after, store.user_events_after, store.feed_after)
    # Nothing was published here (a restart): the store answers.
    assert len(asyncio.run(state.wait("w", 0, 1))) == last
    assert [e.seq for e in asyncio.run(state.wait("w", last - 1, 1))] == [last]
    # Older than the window: read from the store again, nothing lost.
    assert asyncio.run(state.wait("w", 10, 1))[0].seq == 11


def test_memory_holds_unfinished_workflows_only(tmp_path: Path) -> None:
    """A finished workflow's events leave memory with its last one; the store still gives them all."""
    store = SqlRunStore(tmp_path / "db")
    state = ProgressState(store.events_after, store.user_events_after, store.feed_after)
    for workflow_id in ("done", "running"):
        events = [("u", event(1, workflow_id)), ("u", event(2, workflow_id))]
        store.save(events=events)
        state.publish(events)
    finished = Event(workflow_id="done", seq=3, type=EventType.workflow_finished, ts=3.0, data={})
    store.save(events=[("u", finished)])
    state.publish([("u", finished)])
    assert state.workflows_in_memory == 1
    assert [e.seq for e in asyncio.run(state.wait("done", 0, 1))] == [1, 2, 3]
    assert state.workflows_in_memory == 1  # reading a finished one's history does not bring it back


def test_a_users_stream_reads_the_store_and_wakes_on_their_publish(tmp_path: Path) -> None:
    store = SqlRunStore(tmp_path / "db")
    state = ProgressState(store.events_after, store.user_events_after, store.feed_after)
    mine, theirs = event(1, "w1"), event(1, "w2")
    store.save(events=[("alice", mine), ("bob", theirs)])

    async def scenario() -> list[int]:
        assert [e.workflow_id for e in await state.wait_user("alice", 0, 1)] == ["w1"]
        waiter = asyncio.create_task(state.wait_user("alice", mine.id or 0, 10))
        await asyncio.sleep(0.01)
        later = event(2, "w1")
        store.save(events=[("alice", later)])
        state.publish([("bob", event(2, "w2")), ("alice", later)])
        return [e.seq for e in await waiter]

    assert asyncio.run(scenario()) == [2]
    assert state.waiters == 0


def test_the_feed_gives_everyones_events_in_id_order_and_reads_the_store_beyond_memory(tmp_path: Path) -> None:
    store = SqlRunStore(tmp_path / "db")
    state = ProgressState(store.events_after, store.user_events_after, store.feed_after)
    before = [("alice", event(1, "w1")), ("bob", event(1, "w2"))]
    store.save(events=before)  # persisted before this state existed: only the store has them
    live = [("bob", event(2, "w2")), ("alice", event(2, "w1"))]
    store.save(events=live)
    state.publish(live)

    async def scenario() -> None:
        everything = await state.feed(0, 1)
        assert [(user, e.workflow_id, e.seq) for user, e in everything] == [
            ("alice", "w1", 1),
            ("bob", "w2", 1),
            ("bob", "w2", 2),
            ("alice", "w1", 2),
        ]
        newest = everything[-1][1].id or 0
        assert [e.seq for _, e in await state.feed(newest - 1, 1)] == [2]  # from memory
        waiter = asyncio.create_task(state.feed(newest, 10))
        await asyncio.sleep(0.01)
        assert state.feed_waiters == 1
        later = [("alice", event(3, "w1"))]
        store.save(events=later)
        state.publish(later)
        assert [(u, e.seq) for u, e in await waiter] == [("alice", 3)]
        assert await state.feed(later[0][1].id or 0, 0.05) == []  # nothing newer: the store agrees

    asyncio.run(scenario())
    assert state.feed_waiters == 0


def test_the_feed_holds_back_events_that_arrive_ahead_of_an_earlier_one() -> None:
    """Calls to an async actor may run out of order; a replica must never read past a missing id."""
    state = ProgressState(lambda wf, after: [], lambda user, after: [], lambda after, limit: [], last_event_id=10)
    first, second, third = (event(seq) for seq in (1, 2, 3))
    first.id, second.id, third.id = 11, 12, 13
    state.publish([("u", second), ("u", third)])  # 11 has not come yet
    assert asyncio.run(state.feed(10, 0.01)) == []
    state.publish([("u", first)])
    assert [e.id for _, e in asyncio.run(state.feed(10, 0.01))] == [11, 12, 13]
    assert state.last_feed_id == 13


def test_an_id_that_never_comes_is_taken_from_the_store(tmp_path: Path) -> None:
    store = SqlRunStore(tmp_path / "db")
    events = [("u", event(seq)) for seq in (1, 2, 3)]
    store.save(events=events)
    state = ProgressState(store.events_after, store.user_events_after, store.feed_after)
    state.publish(events[1:])  # the publish of the first was lost (a restart)
    got = asyncio.run(state.feed(0, 0.01))
    assert [e.seq for _, e in got] == [1, 2, 3]
    assert [e.seq for _, e in asyncio.run(state.feed(1, 0.01))] == [2, 3]  # the feed is whole again
