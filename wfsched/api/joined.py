"""Joining a Ray cluster that runs things already: Serve's address, wfsched's own actors, leaving.

On a cluster that `wfsched serve --address` joined, what a start sets up outlives it: Serve (which
the cluster's other applications may use too), and the control actors, detached so that running
jobs go on between two starts. Both keep what they started with, whatever a later start asks. So a
start that asks for something else is refused before it deploys anything, naming the difference,
rather than serving with what it did not ask for.
"""

from __future__ import annotations

import contextlib
import logging
import time

import ray
from ray import serve
from ray.exceptions import GetTimeoutError, RayError
from ray.serve.exceptions import RayServeException

from wfsched.config import Settings
from wfsched.control import actors
from wfsched.exceptions import ConflictError
from wfsched.store.database import shown

log = logging.getLogger(__name__)

SERVE_APP_NAME = "wfsched"
# Settings that only the starting process and the API replicas read: a new start applies them
# itself, so the control actors may have started with others.
PER_START_SETTINGS = frozenset(
    {
        "host",
        "port",
        "address",
        "ingress",
        "log_level",
        "api_replicas",
        "api_num_cpus",
        "max_body_bytes",
        "max_jobs_per_workflow",
        "auth_mode",
        "trusted_proxies",
        "api_key_cache_s",
        "stream_token_secret",
        "stream_token_ttl_s",
        "max_streams_per_user",
        "max_streams_per_replica",
        "heartbeat_s",
    }
)
# A scheduler that is restarting (it reloads the unfinished workflows) answers within seconds.
ANSWER_TIMEOUT_S = 60.0
# Ray frees a killed actor's name within a second or two.
STOP_TIMEOUT_S = 60.0
RESTART_HINT = (
    "start with the same, or with --restart-control to stop them first (their running jobs then "
    "start again on the new ones, a segmentation from its finished tiles)"
)


def refuse_another_http_address(settings: Settings) -> None:
    """Raise ConflictError if Serve already runs on the joined cluster (for other applications,
    or left by a run that was killed) on another host or port than `settings` asks: Serve keeps
    its own whatever a start asks, and the console would name an address nobody answers on.

    Serve's HTTP options are known only to its client, which is not public API: a Ray without it
    skips the check (Serve's own warning, "The new HTTP config is ignored", is left)."""
    try:
        from ray.serve.context import _get_global_client

        client = _get_global_client(raise_if_no_controller_running=False)
        http = None if client is None else client.http_config
    except (ImportError, AttributeError, TypeError):
        return
    if http is None:
        return
    host, port = http.host, http.port
    if (host, port) != (settings.host, settings.port):
        apps = ", ".join(sorted(serve.status().applications)) or "none"
        raise ConflictError(
            f"Serve already runs on this cluster on {host}:{port} (applications: {apps}) and would not "
            f"move to {settings.host}:{settings.port}: start wfsched with --host {host} --port {port}, "
            "or shut that Serve down (`serve shutdown`)"
        )


def check_control_actors(settings: Settings, restart: bool) -> None:
    """wfsched's actors that an earlier start left on the cluster, in this start's namespace, must
    run this start's code and settings (but those the replicas read, PER_START_SETTINGS): else
    ConflictError names the difference. With `restart`, they are stopped instead, and this start
    creates them anew."""
    running = _control_actor_names(settings.namespace)
    if not running:
        return
    if restart:
        _stop(settings.namespace, running)
        return
    difference = _difference(settings)
    if difference is not None:
        raise ConflictError(
            f"wfsched's actors already run on this cluster (namespace {settings.namespace!r}) {difference}, "
            f"and keep what they started with for as long as they run: {RESTART_HINT}"
        )


def _control_actor_names(namespace: str) -> list[str]:
    return sorted(
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["namespace"] == namespace and actor["name"].startswith(actors.NAME_PREFIX)
    )


def _difference(settings: Settings) -> str | None:
    """How the running scheduler's code and settings differ from this start's; None if they don't
    (or no scheduler runs: then this start creates it)."""
    try:
        scheduler = ray.get_actor(actors.SCHEDULER_NAME, namespace=settings.namespace)
    except ValueError:
        return None
    try:
        ref: ray.ObjectRef[tuple[str, Settings]] = scheduler.started_with.remote()
    except AttributeError:  # its class has no such method
        return "from an older wfsched"
    try:
        code, running = ray.get(ref, timeout=ANSWER_TIMEOUT_S)
    except GetTimeoutError:
        return f"but their scheduler did not say with which code and settings within {ANSWER_TIMEOUT_S:.0f} s"
    except RayError as error:  # it died meanwhile, or sent what this code cannot read
        return f"but their scheduler could not say with which code and settings ({type(error).__name__})"
    if code != actors.code_fingerprint():
        return "with other wfsched code than this start's (another version or install)"
    changed = changed_settings(running, settings)
    return f"with other settings: {'; '.join(changed)}" if changed else None


def changed_settings(running: Settings, asked: Settings) -> list[str]:
    """Each setting the control actors read that `asked` gives another value than the one they run
    with, as "name value (this start: value)"; a database URL's password shows as ****."""
    was, now = running.model_dump(mode="json"), asked.model_dump(mode="json")
    changed = [name for name in type(asked).model_fields if name not in PER_START_SETTINGS and was[name] != now[name]]
    was["db"], now["db"] = shown(running.db), shown(asked.db)
    return [f"{name} {was[name]} (this start: {now[name]})" for name in changed]


def _stop(namespace: str, names: list[str]) -> None:
    """Kill the named actors for good and wait until their names are free."""
    log.warning("stopping wfsched's actors on this cluster to start them anew: %s", ", ".join(names))
    for name in names:
        with contextlib.suppress(ValueError):  # gone meanwhile
            ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _control_actor_names(namespace):
        if time.monotonic() > deadline:
            raise ConflictError(f"wfsched's actors on this cluster did not stop within {STOP_TIMEOUT_S:.0f} s")
        time.sleep(0.2)


def leave_serve() -> None:
    """Delete the app, and shut Serve down only if no other application runs on it, so that the next
    start applies its own port while other teams' apps on a shared cluster keep running (Serve's
    host and port stay then: `refuse_another_http_address`). The control actors stay: their
    running jobs go on, and the next start joins them."""
    try:
        serve.delete(SERVE_APP_NAME)
        others = sorted(serve.status().applications)
    except RayServeException:
        return  # no Serve on the cluster: nothing of ours runs there
    if others:
        log.warning("Serve keeps running on this cluster for its other applications: %s", ", ".join(others))
    else:
        serve.shutdown()
