"""The one exception tree of wfsched.

    WfschedError
    ├── NotFoundError          a workflow, job or artifact the caller may not see or that does not exist
    ├── InvalidWorkflowError   a submission that cannot run (bad job, cycle, deadlock, bad params)
    │   └── IdempotencyKeyReusedError  an Idempotency-Key sent again with another body
    ├── InvalidRequestError    a request that is malformed outside the workflow body (user id, cursor)
    ├── UnauthorizedError      no trustworthy identity: a bad stream token, an untrusted proxy hop
    │   └── ApiKeyError        an API key that is missing, unknown or revoked
    ├── ForbiddenError         an identity that contradicts the credential (X-User-ID vs the key)
    ├── ConflictError          an action that the current state forbids
    ├── QuotaExceededError     a request over a configured limit; says when to try again
    ├── SettingsError          a setting (a WFSCHED_* variable or a flag) that cannot be used
    └── JobError               a job that failed while it ran
        ├── SlideReadError     a slide that cannot be opened or read
        ├── ModelNotFoundError a segmentation model that is not on this machine
        └── JobCancelledError  a job that stopped because it was cancelled

Domain code raises these; `wfsched.api.errors` alone maps them to HTTP. Every class pickles with
its arguments, because they cross Ray process boundaries.
"""

from __future__ import annotations


class WfschedError(Exception):
    """Base of every error wfsched raises on purpose."""

    code = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __reduce__(self) -> tuple[type, tuple[str], dict[str, object]]:  # type: ignore[override]
        """Errors cross Ray's process boundaries whole: the detail, and a subclass's own fields."""
        return (type(self), (self.detail,), self.__dict__)


class NotFoundError(WfschedError):
    code = "not_found"


class InvalidRequestError(WfschedError):
    code = "invalid_request"


class UnauthorizedError(WfschedError):
    code = "unauthorized"


class ApiKeyError(UnauthorizedError):
    """The API-key mode's 401: the answer also says that a Bearer key is what it takes."""


class ForbiddenError(WfschedError):
    code = "forbidden"


class InvalidWorkflowError(WfschedError):
    """A submission that cannot run; `problems` names each bad job and why."""

    code = "invalid_workflow"

    def __init__(self, detail: str, problems: list[dict[str, str | None]] | None = None) -> None:
        super().__init__(detail)
        self.problems = problems or []


class ConflictError(WfschedError):
    code = "conflict"


class IdempotencyKeyReusedError(InvalidWorkflowError):
    code = "idempotency_key_reused"


class QuotaExceededError(WfschedError):
    code = "quota_exceeded"

    def __init__(self, detail: str, retry_after_s: float = 1.0) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class SettingsError(WfschedError):
    """The sentence names the variable (or field) and quotes its value."""

    code = "invalid_settings"


class JobError(WfschedError):
    code = "job_failed"


class SlideReadError(JobError):
    code = "slide_read_error"


class ModelNotFoundError(JobError):
    code = "model_not_found"


class JobCancelledError(JobError):
    code = "cancelled"
