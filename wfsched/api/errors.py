"""The one place that maps errors to HTTP. Every error body is {"error": code, "detail": sentence}."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from wfsched.exceptions import (
    ApiKeyError,
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    InvalidWorkflowError,
    NotFoundError,
    QuotaExceededError,
    UnauthorizedError,
    WfschedError,
)

STATUS_BY_ERROR: dict[type[WfschedError], int] = {
    NotFoundError: 404,
    InvalidRequestError: 400,
    UnauthorizedError: 401,
    ForbiddenError: 403,
    InvalidWorkflowError: 422,
    ConflictError: 409,
    QuotaExceededError: 429,
}


class ErrorBody(BaseModel):
    """Every error the API answers: a code to branch on and a sentence for a person."""

    error: str
    detail: str
    problems: list[dict[str, Any]] | None = Field(None, description="Each bad job and why (422 on submit).")


# Documented on every /api route, so clients and schema checkers know the shape of each refusal.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "A malformed request: the user id, a cursor, an event id.",
        401: "A stream token or API key that is not valid.",
        403: "An identity the service does not accept: X-User-ID against the key, or not from the proxy.",
        404: "Not found, or not the caller's.",
        409: "The workflow's state forbids it.",
        413: "The request body is over the limit.",
        422: "A body or parameter that cannot be accepted; `problems` names each bad job.",
        429: "Over a per-user limit; `Retry-After` says when to try again.",
    }.items()
}


# RFC 6750: a 401 for a missing or bad bearer token names the scheme the client should use.
HEADERS_BY_ERROR: dict[type[WfschedError], dict[str, str]] = {ApiKeyError: {"WWW-Authenticate": "Bearer"}}


def error_response(
    status_code: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(WfschedError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]


async def _domain_error(request: Request, exc: WfschedError) -> JSONResponse:
    status = next((code for cls, code in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 500)
    extra = {"problems": exc.problems} if isinstance(exc, InvalidWorkflowError) else {}
    headers = next((h for cls, h in HEADERS_BY_ERROR.items() if isinstance(exc, cls)), {})
    if isinstance(exc, QuotaExceededError):
        headers = {**headers, "Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    return error_response(status, exc.code, exc.detail, headers=headers or None, **extra)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Pydantic's errors as sentences; a bad job in a submission is named by its job_id."""
    body = exc.body if isinstance(exc.body, dict) else {}
    problems = [_problem(err, body) for err in exc.errors()]
    detail = "; ".join(f"job {p['job_id']!r}: {p['reason']}" if p["job_id"] else p["reason"] for p in problems)
    code = "invalid_workflow" if request.method == "POST" else "invalid_request"
    return error_response(422, code, detail or "invalid request", problems=problems)


def _problem(err: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    loc = [str(part) for part in err.get("loc", ()) if part != "body"]
    job_id = None
    if len(loc) >= 2 and loc[0] == "jobs" and loc[1].isdigit():
        listed = body.get("jobs")
        jobs: list[Any] = listed if isinstance(listed, list) else []
        index = int(loc[1])
        job = jobs[index] if index < len(jobs) and isinstance(jobs[index], dict) else {}
        job_id = job.get("job_id") if isinstance(job.get("job_id"), str) else f"#{index}"
        loc = loc[2:]
    where = ".".join(loc)
    return {"job_id": job_id, "reason": f"{where}: {err.get('msg')}" if where else str(err.get("msg"))}
