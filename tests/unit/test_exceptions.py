"""Every error crosses Ray's process boundaries whole: it pickles with its detail and its own fields."""

from __future__ import annotations

import pickle

import pytest

from wfsched import exceptions
from wfsched.exceptions import IdempotencyKeyReusedError, InvalidWorkflowError, QuotaExceededError, WfschedError

ERROR_CLASSES = [
    value for value in vars(exceptions).values() if isinstance(value, type) and issubclass(value, WfschedError)
]


@pytest.mark.parametrize("error_class", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_pickles_with_its_detail(error_class: type[WfschedError]) -> None:
    copy = pickle.loads(pickle.dumps(error_class("what went wrong")))
    assert type(copy) is error_class and copy.detail == "what went wrong" and copy.code == error_class.code


def test_fields_of_their_own_come_through() -> None:
    problems = [{"job_id": "a", "problem": "unknown job type"}]
    invalid = pickle.loads(pickle.dumps(InvalidWorkflowError("bad", problems)))
    assert invalid.problems == problems
    reused = pickle.loads(pickle.dumps(IdempotencyKeyReusedError("again", problems)))
    assert reused.problems == problems and reused.code == "idempotency_key_reused"
    assert pickle.loads(pickle.dumps(QuotaExceededError("slow down", retry_after_s=7.5))).retry_after_s == 7.5
