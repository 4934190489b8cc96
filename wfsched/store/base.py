"""The RunStore protocol: what the scheduler and the progress fan-out need from persistence."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from wfsched.models.event import Event
from wfsched.models.state import IdempotentSubmission, JobRecord, WorkflowRecord, WorkflowStatus


class RunStore(Protocol):
    """Persistence of runs. Each `save` is one transaction: all of it lands, or none."""

    def save(
        self,
        workflows: Iterable[WorkflowRecord] = (),
        jobs: Iterable[JobRecord] = (),
        events: Iterable[tuple[str, Event]] = (),
        idempotent: Iterable[IdempotentSubmission] = (),
    ) -> None:
        """Insert or update workflows, jobs and first answers to keyed submissions; append events
        (each with its owner's user id).

        Each appended event gets its global `id`, the cursor of a user's stream of all their events.
        """
        ...

    def load_unfinished(self) -> list[tuple[WorkflowRecord, list[JobRecord]]]:
        """Every queued or running workflow with its jobs, in submission order."""
        ...

    def last_event_seq(self, workflow_id: str) -> int: ...

    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None: ...

    def get_jobs(self, workflow_id: str) -> list[JobRecord]: ...

    def list_workflows(
        self, user_id: str, status: WorkflowStatus | None, before: str | None, limit: int
    ) -> list[WorkflowRecord]:
        """The user's workflows, newest first; `before` is one of theirs: only older ones."""
        ...

    def get_idempotent(self, user_id: str, key: str) -> IdempotentSubmission | None: ...

    def forget_idempotent_before(self, created_before: float) -> None: ...

    def events_after(self, workflow_id: str, after_seq: int, limit: int = 1000) -> list[Event]: ...

    def user_events_after(self, user_id: str, after_id: int, limit: int = 1000) -> list[Event]: ...

    def feed_after(self, after_id: int, limit: int = 1000) -> list[tuple[str, Event]]: ...

    def last_event_id(self) -> int: ...

    def close(self) -> None: ...
