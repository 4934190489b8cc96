"""ProgressActor: one, named; fans events out to long-polls. A thin shell over ProgressState."""

from __future__ import annotations

import ray

from wfsched.config import Settings
from wfsched.control.progress_state import ProgressState
from wfsched.models.event import Event
from wfsched.store.sqlite import SqliteRunStore


@ray.remote
class ProgressActor:
    def __init__(self, settings: Settings) -> None:
        # The scheduler is the one writer; this only reads back what a publish missed.
        self._store = SqliteRunStore(settings.db)
        self.state = ProgressState(self._store.events_after)

    async def publish(self, events: list[Event]) -> None:
        self.state.publish(events)

    async def wait(self, workflow_id: str, after_seq: int, timeout_s: float) -> list[Event]:
        return await self.state.wait(workflow_id, after_seq, timeout_s)

    async def waiters(self) -> int:
        return self.state.waiters
