"""The FastAPI app: routers, the error mapping, the body limit. Serve wraps it in ingress.py."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse

import wfsched
from wfsched.api.errors import install_error_handlers
from wfsched.api.limits import BodySizeLimit
from wfsched.api.routes import artifacts, deps, jobs, progress, workflows
from wfsched.api.routes.deps import ServiceDep
from wfsched.api.tenancy import user_id


def create_app() -> FastAPI:
    app = FastAPI(
        title="wfsched",
        version=wfsched.__version__,
        description="Branch-aware, multi-tenant workflow scheduling for whole-slide-image inference. "
        "Every /api call carries `X-User-ID`; a user sees only their own workflows.",
    )
    api = APIRouter(prefix="/api", dependencies=[Depends(user_id)])
    for module in (workflows, jobs, artifacts, progress):
        api.include_router(module.router)
    app.include_router(api)
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["health"])
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=deps.max_body_bytes)
    return app


async def healthz(service: ServiceDep) -> JSONResponse:
    """Live if this answers; ready when the scheduler answers too."""
    try:
        ready = await service.ready()
    except Exception as exc:  # readiness reports any failure instead of raising it
        return JSONResponse({"status": "unavailable", "detail": str(exc)}, status_code=503)
    return JSONResponse({"status": "ok" if ready else "starting"})
