"""ProgressActor: one, named; the API replicas' event feed. A thin shell over ProgressState."""

from __future__ import annotations

import asyncio
import os

import ray

from wfsched.config import Settings
from wfsched.control import actors
from wfsched.control.messages import Pickled
from wfsched.control.progress_state import ProgressState
from wfsched.models.event import Event
from wfsched.observe import logs
from wfsched.store.runs import SqlRunStore


@ray.remote
class ProgressActor:
    def __init__(self, settings: Settings) -> None:
        logs.install()
        # The scheduler is the one writer; this only reads back what a publish missed.
        self._store = SqlRunStore(settings.db)
        self.state = ProgressState(
            self._store.events_after,
            self._store.user_events_after,
            self._store.feed_after,
            last_event_id=self._store.last_event_id(),
        )
        actors.freeze_startup_heap()

    async def publish(self, events: list[tuple[str, Event]]) -> None:
        self.state.publish(events)

    async def wait(self, workflow_id: str, after_seq: int, timeout_s: float) -> list[Event]:
        return await self.state.wait(workflow_id, after_seq, timeout_s)

    async def wait_user(self, user_id: str, after_id: int, timeout_s: float) -> list[Event]:
        return await self.state.wait_user(user_id, after_id, timeout_s)

    async def feed(self, after_id: int, timeout_s: float) -> Pickled:
        """One API replica's subscription: everyone's events after `after_id`, with their owners
        (the replica gets the list of them)."""
        return Pickled(await self.state.feed(after_id, timeout_s))

    async def last_event_id(self) -> int:
        """Where a new subscription starts: the newest event there is."""
        return self.state.last_feed_id

    async def stats(self) -> dict[str, int]:
        """What the fan-out holds now: waiting long-polls, workflows in memory, pending asyncio tasks."""
        return {
            "waiters": self.state.waiters,
            "feed_waiters": self.state.feed_waiters,
            "workflows_in_memory": self.state.workflows_in_memory,
            "tasks": len(asyncio.all_tasks()),
            "rss_bytes": _rss_bytes(),
        }


def _rss_bytes() -> int:
    """This process's resident memory (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0
