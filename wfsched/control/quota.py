"""Per-user submission limits: submissions per minute and workflows waiting for admission. No Ray.

The scheduler holds one of these, so the limits are the same whichever Api replica a request meets.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from wfsched.exceptions import QuotaExceededError

WINDOW_S = 60.0
# A user over the queued limit waits for admission, which takes as long as others' work: minutes.
QUEUED_RETRY_AFTER_S = 60.0


@dataclass(frozen=True)
class SubmitLimits:
    per_minute: int = 120
    queued_per_user: int = 100


class SubmissionQuota:
    """A sliding one-minute window of each user's accepted submissions, and the queued limit."""

    def __init__(self, limits: SubmitLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        self._recent: dict[str, deque[float]] = {}

    def check(self, user_id: str, queued_now: int) -> None:
        """Raise QuotaExceededError (with when to retry) if one more submission is over a limit."""
        if queued_now >= self.limits.queued_per_user:
            raise QuotaExceededError(
                f"you have {queued_now} workflows waiting for admission, the limit per user: "
                "wait for them to start or cancel some",
                retry_after_s=QUEUED_RETRY_AFTER_S,
            )
        recent = self._window(user_id)
        if len(recent) >= self.limits.per_minute:
            retry_after_s = recent[0] + WINDOW_S - self.clock()
            raise QuotaExceededError(
                f"you submitted {len(recent)} workflows in the last minute, the limit per user: "
                f"try again in {max(1.0, retry_after_s):.0f} s",
                retry_after_s=retry_after_s,
            )

    def record(self, user_id: str) -> None:
        self._recent.setdefault(user_id, deque()).append(self.clock())

    def _window(self, user_id: str) -> deque[float]:
        recent = self._recent.get(user_id, deque())
        since = self.clock() - WINDOW_S
        while recent and recent[0] <= since:
            recent.popleft()
        if not recent:
            self._recent.pop(user_id, None)  # idle users cost nothing
        return recent
