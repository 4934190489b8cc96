"""Starting and stopping the whole service in this process: Ray, the Serve app, the actors."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from typing import Any

import ray
from ray import serve

from wfsched.config import Settings
from wfsched.exceptions import ConflictError

log = logging.getLogger(__name__)

SERVE_APP_NAME = "wfsched"


def ensure_port_free(host: str, port: int) -> None:
    """Raise ConflictError, naming the port, if another process listens on it.

    Serve's proxy binds with SO_REUSEPORT, so a second service on a held port would start
    "healthy" and the kernel would split connections between the two. A plain bind (SO_REUSEADDR
    only, so a port our own last run left in TIME_WAIT still counts as free) fails instead.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as error:
            raise ConflictError(
                f"port {port} on {host} is already in use by another process ({error.strerror}): "
                "stop that process or choose another port (--port, WFSCHED_PORT)"
            ) from error


def start(settings: Settings, ray_init_options: dict[str, Any] | None = None) -> None:
    """Start (or join) Ray and run the Serve app on settings.host:settings.port.

    Raises ConflictError before starting anything when this process would start Ray and Serve
    on a port another process holds. (Joining a cluster, the port is the cluster's Serve's.)
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized() and settings.address is None:
        ensure_port_free(settings.host, settings.port)
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


def serve_until_interrupted(settings: Settings) -> int:
    """Serve until SIGINT or SIGTERM, then stop cleanly; the process's exit status.

    Stopping shuts Serve down and leaves running jobs as they are in the database: the next
    start resumes them (a segmentation from its tile checkpoints), so nothing is lost.
    """
    stopping = threading.Event()

    def listen() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())

    listen()
    try:
        start(settings)
    except ConflictError as error:
        print(f"wfsched: {error}", file=sys.stderr, flush=True)
        return 1
    except SystemExit:
        # ray.init installs a SIGTERM handler that exits at once; a SIGTERM before ours is back
        # lands here, and still takes the stop path below.
        stopping.set()
    # Ours again, in place of ray.init's, so that SIGTERM stops as Ctrl-C does.
    listen()
    if not stopping.is_set():
        print(f"wfsched: serving on http://{settings.host}:{settings.port}  (Ctrl-C stops)", flush=True)
    stopping.wait()
    print("wfsched: stopping", flush=True)
    stop()
    return 0
