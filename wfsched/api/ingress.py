"""The Serve deployment: the FastAPI app as ingress, one Service per replica."""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application

from wfsched.api.app import create_app
from wfsched.api.routes import deps
from wfsched.api.service import Service
from wfsched.config import Settings
from wfsched.observe import logs

fastapi_app = create_app()

# Long-polls and streams hold a request open; a replica must take many at once.
MAX_ONGOING_REQUESTS = 1_000


@serve.deployment(max_ongoing_requests=MAX_ONGOING_REQUESTS)
@serve.ingress(fastapi_app)
class Api:
    def __init__(self, settings: Settings) -> None:
        logs.install()
        deps.install(Service(settings))


def build_app(settings: Settings) -> Application:
    return Api.options(  # type: ignore[attr-defined,no-any-return]
        num_replicas=settings.api_replicas,
        ray_actor_options={"num_cpus": settings.api_num_cpus},
        logging_config=logs.serve_logging_config(settings.log_level),
    ).bind(settings)


def app_builder(args: dict[str, Any]) -> Application:
    """For `serve run` / `serve deploy`: settings from `WFSCHED_*` and the config's `args`."""
    return build_app(Settings.from_env(**args))
