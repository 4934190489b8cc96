"""The active-user limit: at most N users have admitted, unfinished workflows; others wait FIFO."""

from __future__ import annotations

from collections import Counter


class AdmissionState:
    """Which users are active and which workflows wait. Plain state: no Ray, no I/O."""

    def __init__(self, max_active_users: int) -> None:
        self.max_active_users = max_active_users
        self._admitted: Counter[str] = Counter()  # user → admitted, unfinished workflows
        # Waiting users in the order they joined the line, each with their queued workflows. A user
        # keeps their place while any workflow of theirs waits, so a place only ever counts down.
        self._waiting: dict[str, list[str]] = {}

    @property
    def active_users(self) -> set[str]:
        return set(self._admitted)

    def submit(self, workflow_id: str, user_id: str) -> bool:
        """Admit at once if the user is active or a slot is free; else queue. True if admitted."""
        if user_id in self._admitted or len(self._admitted) < self.max_active_users:
            self._admitted[user_id] += 1
            return True
        self._waiting.setdefault(user_id, []).append(workflow_id)
        return False

    def restore_admitted(self, user_id: str) -> None:
        """Count a workflow admitted before a restart (the limit may be exceeded if it was lowered)."""
        self._admitted[user_id] += 1

    def restore_queued(self, workflow_id: str, user_id: str) -> list[str]:
        """Re-queue a workflow after a restart; admitted at once if a slot is free (ids admitted)."""
        self._waiting.setdefault(user_id, []).append(workflow_id)
        return self._admit_waiting()

    def finish(self, user_id: str) -> list[str]:
        """One of the user's admitted workflows ended; return the workflow ids admitted as a result."""
        self._admitted[user_id] -= 1
        if self._admitted[user_id] <= 0:
            del self._admitted[user_id]
        return self._admit_waiting()

    def withdraw(self, workflow_id: str) -> bool:
        """Drop a queued workflow (cancelled while waiting). True if it was queued."""
        for user_id, workflows in self._waiting.items():
            if workflow_id in workflows:
                workflows.remove(workflow_id)
                if not workflows:
                    del self._waiting[user_id]
                return True
        return False

    def queued_of(self, user_id: str) -> int:
        """How many of the user's workflows wait for admission."""
        return len(self._waiting.get(user_id, ()))

    def places(self) -> dict[str, int]:
        """Waiting user → their place in line (1 = next). A user is admitted as a whole, so each
        of their queued workflows has their place; this costs the waiting users, not workflows."""
        return {user_id: place for place, user_id in enumerate(self._waiting, start=1)}

    def place(self, user_id: str) -> int | None:
        """The user's place in line (1 = next), None unless they wait."""
        return self.places().get(user_id)

    def queued(self, user_id: str) -> list[str]:
        """The user's workflows that wait, in submission order."""
        return list(self._waiting.get(user_id, ()))

    def _admit_waiting(self) -> list[str]:
        admitted: list[str] = []
        while self._waiting:
            head_user = next(iter(self._waiting))
            if head_user not in self._admitted and len(self._admitted) >= self.max_active_users:
                break
            # The user becomes active: every workflow of theirs that waits is admitted with it.
            mine = self._waiting.pop(head_user)
            self._admitted[head_user] += len(mine)
            admitted += mine
        return admitted
