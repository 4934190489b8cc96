"""Settings: one frozen object, built once from `WFSCHED_*` variables and CLI flags, passed to actors.

Actors never read the environment themselves; they get this object (it pickles).
"""

from __future__ import annotations

import ipaddress
import math
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeAlias

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

ENV_PREFIX = "WFSCHED_"


def default_home() -> Path:
    """Where the embedded default keeps its database and results: `$WFSCHED_HOME` or XDG data."""
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "wfsched"


def default_cache_dir() -> Path:
    """Where fetched models and sample slides live (a user cache folder)."""
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "wfsched"


class AuthMode(StrEnum):
    """How a request proves who it is (see README, "Identity")."""

    #: The caller's `X-User-ID` is believed: the embedded default, for a trusted network only.
    header = "header"
    #: `Authorization: Bearer <key>`; keys are made by `wfsched keys create` and stored hashed.
    api_key = "api_key"
    #: `X-User-ID` counts only on requests whose peer is one of `trusted_proxies`.
    trusted_proxy = "trusted_proxy"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    db: Path = field(default_factory=lambda: default_home() / "wfsched.db")
    data_roots: tuple[Path, ...] = field(default_factory=lambda: (default_cache_dir() / "slides",))
    results_dir: Path = field(default_factory=lambda: default_home() / "results")
    cache_dir: Path = field(default_factory=default_cache_dir)
    max_active_users: int = 3
    max_jobs_per_workflow: int = 1000
    # 1 MiB holds ~4,000 jobs of the documented shape: far above max_jobs_per_workflow.
    max_body_bytes: int = 1_048_576
    # None starts a local Ray; "auto" or "ray://host:10001" joins a cluster.
    address: str | None = None
    namespace: str = "wfsched"
    # A Ray actor is a process, so branch lanes are hosted by a small pool of actors (see README).
    branch_actors: int = 2
    # Extra modules whose JOB_TYPES are registered beside the built-in ones (tests, plugins).
    job_modules: tuple[str, ...] = ()
    # GPUs per segment_tiles task; fractional shares a GPU, 0 runs on CPU-only clusters.
    num_gpus_per_task: float = 0.0
    api_replicas: int = 1
    api_num_cpus: float = 0.0
    # A cancelled segmentation batch stops at its next Python bytecode; what an interrupt cannot
    # reach is one tile's forward pass inside torch's C++ (~1 s for a 512 px tile on a CPU, far less
    # on a GPU). 5 s is that with margin; a batch still running then is killed with its worker.
    cancel_grace_s: float = 5.0
    # How often the scheduler re-checks that every running job is still running somewhere.
    reconcile_interval_s: float = 5.0
    # A comment line on idle streams this often keeps proxies from closing them (~15 s is common).
    heartbeat_s: float = 15.0
    # Signs stream tokens (browsers cannot send X-User-ID on EventSource/WebSocket). Random per
    # start unless set: every replica gets this same object, and tokens live minutes only.
    stream_token_secret: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    stream_token_ttl_s: float = 300.0
    # Per-user limits, so one tenant cannot starve the rest (429 with Retry-After beyond them).
    # 20 streams: a browser tab holds one or two; a dashboard watching every workflow a few more.
    max_streams_per_user: int = 20
    # All streams of one Api replica: below its max_ongoing_requests (1,000), so requests always fit.
    max_streams_per_replica: int = 800
    # Queued (not yet admitted) workflows of one user: a lab's batch, not an unbounded backlog.
    max_queued_workflows_per_user: int = 100
    # Submissions of one user per minute: ~2 a second sustained, far above a person or a script's need.
    max_submissions_per_minute: int = 120
    # How long an Idempotency-Key is remembered (24 h, as payment APIs do).
    idempotency_ttl_s: float = 86_400.0
    auth_mode: AuthMode = AuthMode.header
    # The proxies whose X-User-ID counts in trusted_proxy mode: addresses or CIDR networks.
    trusted_proxies: tuple[Network, ...] = ()
    # How long a replica remembers an API key it has looked up: a revoked key works at most this long.
    api_key_cache_s: float = 5.0

    def __post_init__(self) -> None:
        if self.auth_mode == AuthMode.trusted_proxy and not self.trusted_proxies:
            raise ValueError("auth_mode trusted_proxy needs trusted_proxies (WFSCHED_TRUSTED_PROXIES)")

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given fields replaced; None values leave a field as it is."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **{k: _coerce(k, v) for k, v in given.items()})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        from_env = {f.name: env[ENV_PREFIX + f.name.upper()] for f in fields(cls) if ENV_PREFIX + f.name.upper() in env}
        return cls().with_overrides(**from_env).with_overrides(**overrides)


def _coerce(name: str, value: Any) -> Any:
    """Turn strings from the environment (or CLI) into the field's type."""
    if name in ("db", "results_dir", "cache_dir"):
        return Path(value).expanduser()
    if name == "data_roots":
        items = value.split(os.pathsep) if isinstance(value, str) else value
        return tuple(Path(p).expanduser() for p in items if str(p))
    if name == "job_modules":
        items = value.split(",") if isinstance(value, str) else value
        return tuple(str(m).strip() for m in items if str(m).strip())
    if name in (
        "port",
        "max_active_users",
        "max_jobs_per_workflow",
        "max_body_bytes",
        "branch_actors",
        "api_replicas",
        "max_streams_per_user",
        "max_streams_per_replica",
        "max_queued_workflows_per_user",
        "max_submissions_per_minute",
    ):
        return _positive_int(name, value)
    if name == "auth_mode":
        try:
            return AuthMode(value)
        except ValueError:
            choices = ", ".join(mode.value for mode in AuthMode)
            raise ValueError(f"auth_mode must be one of {choices}, got {value!r}") from None
    if name == "trusted_proxies":
        items = value.split(",") if isinstance(value, str) else value
        return tuple(_network(item) for item in items if str(item).strip())
    if name in (
        "num_gpus_per_task",
        "api_num_cpus",
        "cancel_grace_s",
        "reconcile_interval_s",
        "heartbeat_s",
        "stream_token_ttl_s",
        "idempotency_ttl_s",
        "api_key_cache_s",
    ):
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        return number
    if name == "address":
        return str(value) or None
    return value


def _positive_int(name: str, value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return number


def _network(value: Any) -> Network:
    """An address or a CIDR network; host bits are allowed (`10.0.0.5/24` means 10.0.0.0/24)."""
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    try:
        return ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        raise ValueError(f"trusted_proxies: {str(value).strip()!r} is not an IP address or CIDR network") from None
