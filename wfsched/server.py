"""Starting and stopping the whole service in this process: Ray, the Serve app, the actors."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

import ray
from ray import serve

from wfsched.config import Settings

log = logging.getLogger(__name__)

SERVE_APP_NAME = "wfsched"


def start(settings: Settings, ray_init_options: dict[str, Any] | None = None) -> None:
    """Start (or join) Ray and run the Serve app on settings.host:settings.port."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        # "local" always starts a new Ray here, never joins one found by chance.
        address = settings.address or "local"
        ray.init(address=address, namespace=settings.namespace, **(ray_init_options or {}))
    serve.start(http_options={"host": settings.host, "port": settings.port})
    from wfsched.api.ingress import build_app

    serve.run(build_app(settings), name=SERVE_APP_NAME, route_prefix="/")
    log.info("wfsched is serving on http://%s:%d (database %s)", settings.host, settings.port, settings.db)


def stop() -> None:
    """Stop the Serve app and, if this process started it, Ray with every actor."""
    try:
        serve.shutdown()
    finally:
        ray.shutdown()


def serve_until_interrupted(settings: Settings) -> None:
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    start(settings)
    print(f"wfsched: serving on http://{settings.host}:{settings.port}  (Ctrl-C stops)", flush=True)
    stopping.wait()
    print("wfsched: stopping", flush=True)
    stop()
