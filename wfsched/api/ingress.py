"""The Serve deployment: the FastAPI app as ingress, one Service per replica."""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application
from ray.serve._private import constants as serve_constants

from wfsched.api.app import create_app
from wfsched.api.routes import deps
from wfsched.api.service import Service
from wfsched.config import TRUSTED_PROXY_BEHIND_HAPROXY, AuthMode, Settings
from wfsched.control import actors
from wfsched.exceptions import SettingsError
from wfsched.observe import logs

fastapi_app = create_app()

# Requests a replica takes beside its streams (max_streams_per_replica), each of which holds a
# request open: with the default 800 streams, 1,000 in all.
REQUESTS_BESIDE_STREAMS = 200


@serve.deployment
@serve.ingress(fastapi_app)
class Api:
    def __init__(self, settings: Settings) -> None:
        refuse_trusted_proxy_behind_haproxy(settings, serve_constants.RAY_SERVE_ENABLE_DIRECT_INGRESS)
        logs.install()
        deps.install(Service(settings))
        actors.freeze_startup_heap()  # what Serve froze before this ran leaves out the app's imports


def refuse_trusted_proxy_behind_haproxy(settings: Settings, direct_ingress: bool) -> None:
    """A replica does not start in trusted_proxy mode behind Serve's direct ingress.

    Settings refuse `ingress=haproxy` with it; this covers a cluster whose nodes started Ray with
    direct ingress on (`RAY_SERVE_ENABLE_DIRECT_INGRESS`), which a service joining it inherits.
    """
    if settings.auth_mode == AuthMode.trusted_proxy and direct_ingress:
        raise SettingsError(TRUSTED_PROXY_BEHIND_HAPROXY)


def build_app(settings: Settings) -> Application:
    return Api.options(  # type: ignore[attr-defined,no-any-return]
        num_replicas=settings.api_replicas,
        max_ongoing_requests=settings.max_streams_per_replica + REQUESTS_BESIDE_STREAMS,
        ray_actor_options={"num_cpus": settings.api_num_cpus},
        logging_config=logs.serve_logging_config(settings.log_level),
    ).bind(settings)


def app_builder(args: dict[str, Any]) -> Application:
    """For `serve run` / `serve deploy`: settings from `WFSCHED_*` and the config's `args`."""
    return build_app(Settings.from_env(**args))
