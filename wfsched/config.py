"""Settings: one frozen object, built once from `WFSCHED_*` variables and CLI flags, passed to actors.

Actors never read the environment themselves; they get this object (it pickles, and unpickling
reads nothing).

Two ways to build it, on purpose:

- `Settings.from_env(**overrides)` reads the `WFSCHED_*` variables (`WFSCHED_PORT` for `port`, …),
  then applies `overrides` (the CLI's flags; a None leaves the field as it is). The command line,
  the Serve app builder and the test service build theirs this way. A bad value raises one
  `SettingsError` that names the variable and quotes what it held.
- `Settings(field=value)` takes the given values and the defaults, and no `WFSCHED_*` variable:
  what a test or a library caller builds is what it gets, whatever the shell exports.

List-valued variables are split here, not decoded as JSON: `WFSCHED_DATA_ROOTS` by `:`
(`os.pathsep`), `WFSCHED_JOB_MODULES` and `WFSCHED_TRUSTED_PROXIES` by `,`, and
`WFSCHED_TENANT_WEIGHTS` by `,` into `name=weight` pairs. An empty variable counts as unset.
"""

from __future__ import annotations

import ipaddress
import math
import os
import secrets
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, NewType, TypeAlias

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from wfsched.exceptions import SettingsError

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

ENV_PREFIX = "WFSCHED_"

# A cancelled segmentation batch stops at its next Python bytecode; what an interrupt cannot reach
# is one tile's forward pass inside torch's C++ (~1 s for a 512 px tile on a CPU, far less on a
# GPU). 5 s is that with margin; a batch still running then is killed with its worker.
CANCEL_GRACE_S = 5.0


def default_home() -> Path:
    """Where the embedded default keeps its database and results: XDG data (`~/.local/share`)."""
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


class BatchOrder(StrEnum):
    """Whose segmentation batch gets the next free accelerator slot (README, "Fair share")."""

    #: Weighted deficit round-robin over the tenants with batches waiting: each gets its weight's share.
    fair = "fair"
    #: First asked, first served, whoever asks: what Ray's own queue does; kept for comparison.
    fifo = "fifo"


def _split(separator: str) -> Callable[[Any], Any]:
    """A string becomes its non-empty, stripped items; anything else is left to the field's type."""

    def split(value: Any) -> Any:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(separator) if item.strip())
        return value

    return split


def _network(value: Any) -> Any:
    # Host bits are allowed, as in an allow-list: `10.0.0.5/24` means 10.0.0.0/24.
    return ipaddress.ip_network(value, strict=False) if isinstance(value, str) else value


PostgresUrl = NewType("PostgresUrl", str)
"""A libpq connection URL, `postgresql://[user@][host][:port]/database[?param=value&…]`."""
DatabaseLocation: TypeAlias = Path | PostgresUrl
"""Where the service keeps its state: a SQLite file (the embedded default), or a PostgreSQL database."""

POSTGRES_SCHEMES = ("postgresql", "postgres")


def _database_location(value: Any) -> Any:
    """A `postgresql://` URL stays a URL; another scheme is refused; anything else is a file path."""
    if isinstance(value, str) and "://" in value:
        scheme = value.partition("://")[0]
        if scheme not in POSTGRES_SCHEMES:
            raise ValueError(f"must be a SQLite file path or a postgresql:// URL, not a {scheme}:// URL")
        return value
    return Path(value).expanduser() if isinstance(value, str | Path) else value


def _weights(value: Any) -> Any:
    """`alice=2,bob=0.5` (or a mapping) becomes sorted (tenant, weight) pairs; the weights are checked by type."""
    if isinstance(value, str):
        pairs = []
        for item in _split(",")(value):
            tenant, equals, weight = item.rpartition("=")
            if not equals or not tenant.strip():
                raise ValueError(f"{item!r} is not tenant=weight")
            pairs.append((tenant.strip(), weight.strip()))
        return tuple(sorted(pairs))
    if isinstance(value, Mapping):
        return tuple(sorted(value.items()))
    return value


def _gpus(value: Any) -> Any:
    """`auto`, or a number of GPUs ≥ 0: one sentence for anything else (not one per union member)."""
    if value == "auto":
        return value
    try:
        gpus = float(value)
    except (TypeError, ValueError):
        gpus = math.nan
    if not gpus >= 0 or math.isinf(gpus):
        raise ValueError("must be 'auto' or a number of GPUs of at least 0")
    return gpus


UserPath = Annotated[Path, AfterValidator(Path.expanduser)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


# Behind Serve's direct ingress every request reaches a replica from HAProxy, so the peer address
# names HAProxy, never the client: trusting it would trust everyone who reaches the port.
TRUSTED_PROXY_BEHIND_HAPROXY = (
    "auth_mode trusted_proxy needs ingress serve: behind HAProxy every request comes from HAProxy's "
    "address, so the peer cannot tell the trusted proxy from anyone else (README: Identity)"
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True)

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65_535)] = 8000
    # A SQLite file, or a postgresql:// URL where one file is not enough (README: "Where state is kept").
    db: Annotated[DatabaseLocation, BeforeValidator(_database_location)] = Field(
        default_factory=lambda: default_home() / "wfsched.db"
    )
    data_roots: Annotated[tuple[UserPath, ...], NoDecode, BeforeValidator(_split(os.pathsep))] = Field(
        default_factory=lambda: (default_cache_dir() / "slides",)
    )
    results_dir: UserPath = Field(default_factory=lambda: default_home() / "results")
    cache_dir: UserPath = Field(default_factory=default_cache_dir)
    max_active_users: PositiveInt = 3
    max_jobs_per_workflow: PositiveInt = 1000
    # 1 MiB holds ~4,000 jobs of the documented shape: far above max_jobs_per_workflow.
    max_body_bytes: PositiveInt = 1_048_576
    # None starts a local Ray; "auto" or "ray://host:10001" joins a cluster.
    address: str | None = None
    namespace: str = "wfsched"
    # A Ray actor is a process, so branch lanes are hosted by a small pool of actors (see README).
    branch_actors: PositiveInt = 2
    # Extra modules whose JOB_TYPES are registered beside the built-in ones (tests, plugins).
    job_modules: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split(","))] = ()
    # GPUs per segment_tiles task; fractional shares a GPU, 0 runs on CPUs. `auto`: 1 while the
    # cluster has GPUs, else 0 (`gpus_per_task`).
    num_gpus_per_task: Annotated[float | Literal["auto"], BeforeValidator(_gpus)] = "auto"
    # Whose batch gets the next accelerator slot: fair share across tenants, or first come first served.
    batch_order: BatchOrder = BatchOrder.fair
    # Shares of the accelerators under fair order, per tenant (user id); 1 for a tenant not listed.
    tenant_weights: Annotated[tuple[tuple[str, Positive], ...], NoDecode, BeforeValidator(_weights)] = ()
    # A job's slots return to the pool once it has not been heard from this long (its process died);
    # a running job renews every third of it.
    slot_lease_s: Positive = 30.0
    api_replicas: PositiveInt = 1
    api_num_cpus: NonNegative = 0.0
    # What answers on host:port: Serve's proxy (Python: every SSE write crosses it as a Ray message),
    # or HAProxy in front of replicas that serve HTTP themselves (Serve's direct ingress; ~10x the
    # stream writes per second). Set at the start of a local Ray (README: "Watching progress").
    ingress: Literal["serve", "haproxy"] = "serve"
    cancel_grace_s: NonNegative = CANCEL_GRACE_S
    # How often the scheduler re-checks that every running job is still running somewhere.
    reconcile_interval_s: NonNegative = 5.0
    # A comment line on idle streams this often keeps proxies from closing them (~15 s is common).
    heartbeat_s: NonNegative = 15.0
    # JSON log lines of every Ray process from this level; `debug` also puts them, Serve's access lines
    # and the HTTP client's lines on the console (observe/logs.py).
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Signs stream tokens (browsers cannot send X-User-ID on EventSource/WebSocket). Random per
    # start unless set: every replica gets this same object, and tokens live minutes only.
    stream_token_secret: str = Field(default_factory=lambda: secrets.token_hex(32), repr=False)
    stream_token_ttl_s: NonNegative = 300.0
    # Per-user limits, so one tenant cannot starve the rest (429 with Retry-After beyond them).
    # 20 streams: a browser tab holds one or two; a dashboard watching every workflow a few more.
    max_streams_per_user: PositiveInt = 20
    # All streams of one Api replica; it takes 200 requests more than this at once, so requests always fit.
    max_streams_per_replica: PositiveInt = 800
    # Queued (not yet admitted) workflows of one user: a lab's batch, not an unbounded backlog.
    max_queued_workflows_per_user: PositiveInt = 100
    # Submissions of one user per minute: ~2 a second sustained, far above a person or a script's need.
    max_submissions_per_minute: PositiveInt = 120
    # How long an Idempotency-Key is remembered (24 h, as payment APIs do).
    idempotency_ttl_s: NonNegative = 86_400.0
    auth_mode: AuthMode = AuthMode.header
    # The proxies whose X-User-ID counts in trusted_proxy mode: addresses or CIDR networks.
    trusted_proxies: Annotated[
        tuple[Annotated[Network, BeforeValidator(_network)], ...], NoDecode, BeforeValidator(_split(","))
    ] = ()
    # How long a replica remembers an API key it has looked up: a revoked key works at most this long.
    api_key_cache_s: NonNegative = 5.0
    # Metrics carry the tenant (user id) as a label; off, it reads "all" (for very many tenants).
    metrics_tenant_label: bool = True

    def gpus_per_task(self, cluster_gpus: float) -> float:
        """What a segmentation task asks Ray for, on a cluster with `cluster_gpus` GPUs now.

        An explicit `num_gpus_per_task` wins; `auto` is one GPU a task while the cluster has any,
        none (CPUs) while it has none.
        """
        if self.num_gpus_per_task == "auto":
            return 1.0 if cluster_gpus > 0 else 0.0
        return self.num_gpus_per_task

    @model_validator(mode="after")
    def _proxies_for_trusted_proxy(self) -> Settings:
        if self.auth_mode == AuthMode.trusted_proxy and not self.trusted_proxies:
            raise ValueError(f"auth_mode trusted_proxy needs trusted_proxies ({ENV_PREFIX}TRUSTED_PROXIES)")
        if self.auth_mode == AuthMode.trusted_proxy and self.ingress == "haproxy":
            raise ValueError(TRUSTED_PROXY_BEHIND_HAPROXY)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # `Settings(...)` is the given values only; `from_env` reads the variables (module docstring).
        return (init_settings,)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """The `WFSCHED_*` variables, then `overrides` (a None leaves the field as it is)."""
        from_env: dict[str, Any] = EnvSettingsSource(cls)()
        given = {name: value for name, value in overrides.items() if value is not None}
        values = {**from_env, **given}
        try:
            return cls(**values)
        except ValidationError as error:
            env_names = set(from_env) - set(given)
            sentences = (_sentence(detail, values, env_names) for detail in error.errors())
            raise SettingsError("; ".join(sentences)) from None


def _sentence(detail: ErrorDetails, values: dict[str, Any], env_names: set[str]) -> str:
    """One validation error as a sentence naming the variable (or field) and quoting its value."""
    message = detail["msg"].removeprefix("Value error, ")
    if not detail["loc"]:
        return message
    field = str(detail["loc"][0])
    name = ENV_PREFIX + field.upper() if field in env_names else field
    if message.startswith("Input should be "):
        message = f"{name} must be {message.removeprefix('Input should be ')}"
    else:
        message = f"{name}: {message}"
    return f"{message}, got {values[field]!r}" if field in values else message
