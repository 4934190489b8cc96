"""What the scheduler and the branch lanes tell each other (commands one way, reports the other), and
how actors send such batches (`Pickled`)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

from wfsched.models.state import JobRecord, JobResult, JobStatus


@dataclass(frozen=True)
class StartJob:
    """Run `job` on its branch lane; `upstream` are the finished jobs it depends on.

    `then` starts the next job of the branch when nothing but `job` holds it back (all else it
    depends on has succeeded): the lane starts it the moment `job` ends (unless `job` was cancelled,
    or failed and `then` depends on it, or `then` was stopped), saving a round trip through the
    scheduler. The scheduler starts that job too once it hears of the end; the lane takes that as
    the same start. A StartJob for a job already running only updates its `then`: so the scheduler
    hands a job on to the lane when its last dependency succeeds while its predecessor still runs.
    """

    user_id: str
    job: JobRecord
    upstream: list[JobRecord]
    then: StartJob | None = None
    # The X-Request-ID of the workflow's submission, for the lane's and its tasks' log lines.
    request_id: str | None = None


@dataclass(frozen=True)
class StopJob:
    workflow_id: str
    branch: str
    job_id: str


Command = StartJob | StopJob


@dataclass(frozen=True)
class JobReport:
    workflow_id: str
    job_id: str
    status: JobStatus
    started_at: float
    finished_at: float
    result: dict[str, Any] | None
    error: str | None
    # The class of a failure, for metrics: a wfsched error code or an exception's class name.
    error_type: str | None = None

    def outcome(self) -> dict[str, Any]:
        """The fields of the job's record that its end settles."""
        return {
            "status": self.status,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "result": None if self.result is None else JobResult.model_validate(self.result),
            "error": self.error,
        }


@dataclass(frozen=True)
class ProgressReport:
    workflow_id: str
    job_id: str
    done: int
    total: int


Report = JobReport | ProgressReport


class Pickled:
    """A batch (commands, reports, events) as one actor sends it to another: the receiver gets
    `value` itself, pickled by plain pickle rather than by Ray's.

    Ray pickles arguments and return values with cloudpickle, whose hook in Python runs for every
    object: for a list of small records that doubled the cost of sending it (measured: 50 start
    commands 1.7 ms against 0.99 ms), most of the scheduler's flush. Plain pickle finds classes
    by name, and every wfsched process imports them.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return pickle.loads, (pickle.dumps(self.value, protocol=pickle.HIGHEST_PROTOCOL),)
