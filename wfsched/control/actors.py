"""Names of the named actors and how every process finds (or creates) them."""

from __future__ import annotations

import zlib
from typing import Any

import ray

from wfsched.config import Settings
from wfsched.types import Handle

SCHEDULER_NAME = "wfsched-scheduler"
PROGRESS_NAME = "wfsched-progress"
BRANCH_NAME = "wfsched-branch-{index}"

# Async and threaded actors here only wait on I/O and other actors; they need no CPU slot.
CONTROL_OPTIONS: dict[str, Any] = {
    "lifetime": "detached",
    "get_if_exists": True,
    "max_restarts": -1,
    # A call to an actor that is restarting waits for it instead of failing.
    "max_task_retries": -1,
    "num_cpus": 0,
    # Per-call task events cost GCS traffic on every job step; these actors log what matters.
    "enable_task_events": False,
}


def _pinned_to_head() -> dict[str, Any]:
    # The SQLite file lives on the head node, so the actors that open it run there.
    return {"resources": {"node:__internal_head__": 0.001}}


def scheduler(settings: Settings) -> Handle:
    from wfsched.control.scheduler import SchedulerActor

    return SchedulerActor.options(  # type: ignore[attr-defined,no-any-return]
        name=SCHEDULER_NAME, namespace=settings.namespace, **CONTROL_OPTIONS, **_pinned_to_head()
    ).remote(settings)


def progress(settings: Settings) -> Handle:
    from wfsched.control.progress import ProgressActor

    return ProgressActor.options(  # type: ignore[attr-defined,no-any-return]
        name=PROGRESS_NAME, namespace=settings.namespace, **CONTROL_OPTIONS, **_pinned_to_head()
    ).remote(settings)


def branch_index(settings: Settings, workflow_id: str, branch_name: str) -> int:
    """Which BranchActor of the pool hosts the lane of (workflow, branch): always the same one."""
    return zlib.crc32(f"{workflow_id}/{branch_name}".encode()) % settings.branch_actors


def branch_host(settings: Settings, index: int) -> Handle:
    """The pool's BranchActor number `index`, created if it does not exist (a GCS round trip)."""
    from wfsched.control.branch import BranchActor

    return BranchActor.options(  # type: ignore[attr-defined,no-any-return]
        name=BRANCH_NAME.format(index=index), namespace=settings.namespace, **CONTROL_OPTIONS
    ).remote(settings)


def existing(name: str, settings: Settings) -> Handle:
    return ray.get_actor(name, namespace=settings.namespace)
