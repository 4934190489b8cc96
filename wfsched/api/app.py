"""The FastAPI app: routers, the error mapping, the body limit, the web page. Serve wraps it (ingress.py)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

import wfsched
from wfsched.api.errors import ERROR_RESPONSES, install_error_handlers
from wfsched.api.limits import BodySizeLimit
from wfsched.api.routes import artifacts, deps, jobs, progress, streams, workflows
from wfsched.api.routes.deps import ServiceDep
from wfsched.api.tenancy import user_id
from wfsched.models.state import FINISHED_JOB, FINISHED_WORKFLOW
from wfsched.observe.logs import RequestLogContext

WEB_DIR = Path(wfsched.__file__).parent / "web"


def create_app() -> FastAPI:
    app = FastAPI(
        title="wfsched",
        version=wfsched.__version__,
        description="Branch-aware, multi-tenant workflow scheduling for whole-slide-image inference. "
        "Every /api call says who is asking: `X-User-ID` by default, or an API key (`Authorization: Bearer`) "
        "or a trusted proxy's `X-User-ID` where the service is configured so; a user sees only their own "
        "workflows. Streams also take "
        "a short-lived `?token=` from `POST /api/stream-tokens`, for browsers.",
    )
    api = APIRouter(prefix="/api", dependencies=[Depends(user_id)], responses=ERROR_RESPONSES)
    for module in (workflows, jobs, artifacts, progress):
        api.include_router(module.router)
    api.include_router(streams.tokens_router)
    app.include_router(api)
    # Streams authenticate by header or by token, so they sit outside the header-only router.
    app.include_router(streams.router, prefix="/api", responses=ERROR_RESPONSES)
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["health"])
    app.add_api_route("/", index, methods=["GET"], include_in_schema=False)
    app.mount("/web", StaticFiles(directory=WEB_DIR, check_dir=False), name="web")
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=deps.max_body_bytes)
    app.add_middleware(RequestLogContext)
    return app


@functools.cache
def _index_html() -> str:
    """The page, with the finished statuses of wfsched.models.state written in (one definition)."""
    statuses = {"workflow": sorted(FINISHED_WORKFLOW), "job": sorted(FINISHED_JOB)}
    return (WEB_DIR / "index.html").read_text(encoding="utf-8").replace("{{FINISHED_STATUSES}}", json.dumps(statuses))


async def index() -> HTMLResponse:
    """The web UI."""
    return HTMLResponse(_index_html())


async def healthz(service: ServiceDep) -> JSONResponse:
    """Live if this answers; ready when the scheduler answers too."""
    try:
        ready = await service.ready()
    except Exception as exc:  # readiness reports any failure instead of raising it
        return JSONResponse({"status": "unavailable", "detail": str(exc)}, status_code=503)
    return JSONResponse({"status": "ok" if ready else "starting", "open_streams": service.open_streams})
