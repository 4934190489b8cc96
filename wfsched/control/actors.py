"""Names of the named actors and how every process finds (or creates) them."""

from __future__ import annotations

import functools
import gc
import hashlib
from pathlib import Path
from typing import Any

import ray

from wfsched.config import Settings
from wfsched.types import Handle

# Every control actor's name starts so: the ones a start finds in its namespace are wfsched's.
NAME_PREFIX = "wfsched-"
SCHEDULER_NAME = NAME_PREFIX + "scheduler"
PROGRESS_NAME = NAME_PREFIX + "progress"
DISPATCHER_NAME = NAME_PREFIX + "dispatcher"
BRANCH_NAME = NAME_PREFIX + "branch-{index}"

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
    return {"resources": {"node:__internal_head__": 0.001}}


def get_or_create(actor_class: Any, name: str, settings: Settings, *, on_head: bool = False) -> Handle:
    """The named actor, created from `actor_class` if it does not exist yet (a GCS round trip).

    The caller passes the class, so this module imports none: it names the actors and finds them.
    `on_head`: the actor opens the SQLite file, which lives on the head node, or must outlive any
    worker node.
    """
    options = {**CONTROL_OPTIONS, **(_pinned_to_head() if on_head else {})}
    return actor_class.options(name=name, namespace=settings.namespace, **options).remote(settings)  # type: ignore[no-any-return]


def branch_index(settings: Settings, workflow_id: str, branch_name: str) -> int:
    """Which BranchActor of the pool hosts the lane of (workflow, branch): always the same one, and
    the branches of one workflow spread over the pool as if at random.

    A hash that mixes every bit: CRC-32, used before, is linear, so modulo a power of two it put two
    branches whose names differ only in their last bits ("a" and "b", "b0" to "b3") on the same host
    for every workflow, or on different ones for every workflow. Changing this function moves
    lanes: a scheduler restarted with another one while the lane hosts run jobs would look for
    those jobs on other hosts and start them again there.
    """
    digest = hashlib.blake2b(f"{workflow_id}/{branch_name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % settings.branch_actors


@functools.cache
def code_fingerprint() -> str:
    """A digest of the wfsched package's Python files as this process first asked (an actor asks as
    it starts): two processes with the same one run the same code."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.blake2b(digest_size=8)
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def existing(name: str, settings: Settings) -> Handle:
    return ray.get_actor(name, namespace=settings.namespace)


# Python's defaults are (700, 10, 10). Measured with `bench/scheduler.py` at ten times the seed's
# scale: pauses over 5 ms per run went from 27 to 5 in the scheduler and from ~54 to ~6 in each
# lane host (from 0.9–1.5 s to ~0.35 s of pauses in all); cyclic garbage waits a little longer.
GC_THRESHOLDS = (20_000, 10, 10)


def freeze_startup_heap() -> None:
    """At the end of a long-lived actor's or an API replica's `__init__`: what its start allocated
    (modules, Ray's worker, its own state) stays for its life, so the cyclic GC stops scanning it.
    A lane host holds ~260,000 such objects, and each full collection walked them all: 260–420 ms
    on this 2-core machine at ten times the seed's scale, during which no job of its lanes started
    (15–105 ms without them). Serve freezes its proxies' and replicas' heaps too, but a replica's
    before the app's `__init__` imports the job types' libraries: there a full collection took
    0.7–1.2 s, a stall of every stream. Freed by reference counting as before; only a cycle among
    them would stay.

    Then the young generation is collected every GC_THRESHOLDS[0] allocations instead of 700: the
    jobs' records, reports and events these actors hold for seconds were scanned again and again
    on their way to the old generation.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
