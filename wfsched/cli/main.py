"""The `wfsched` command: serve, fetch, demo, keys (admin), and the client commands (commands.py)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import httpx
import typer

from wfsched.cli.client import ApiError
from wfsched.cli.commands import EXIT_ERROR, add_client_commands
from wfsched.config import Settings
from wfsched.exceptions import WfschedError
from wfsched.observe import logs
from wfsched.store.keys import ApiKeyStore

app = typer.Typer(
    name="wfsched",
    help="Run the wfsched service (serve, demo, keys), and submit and follow workflows on it.",
    no_args_is_help=True,
    add_completion=False,
    # Plain tracebacks: rich's boxes (with locals: the API key, the token secret) do not belong in a log.
    pretty_exceptions_enable=False,
)
keys = typer.Typer(help="make, list and revoke API keys (auth_mode api_key), in the database", no_args_is_help=True)

# A str, not a Path: a Path would fold the `//` of a postgresql:// URL (config.py tells them apart).
Db = Annotated[
    str | None,
    typer.Option(help="the service's SQLite file or postgresql:// URL (WFSCHED_DB)", show_default=False),
]
LogLevel = Annotated[
    str | None,
    typer.Option(
        help="debug, info, warning or error (WFSCHED_LOG_LEVEL; default info): of the JSON log lines; "
        "debug also shows Ray's, Serve's and each request's lines here",
        show_default=False,
    ),
]


def main(argv: Sequence[str] | None = None) -> None:
    """The console script and `python -m wfsched`: run one command, exit with its status.

    Errors a user can act on (the API's answer, a service out of reach, a bad setting) end as one
    line and EXIT_ERROR, as usage errors do.
    """
    logs.console()
    try:
        app(args=argv, prog_name="wfsched")
    except httpx.TransportError as error:
        print(f"wfsched: {error.request.url} is out of reach: {error}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    except (ApiError, WfschedError) as error:
        print(f"wfsched: {error}", file=sys.stderr)
        sys.exit(EXIT_ERROR)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="HTTP host (WFSCHED_HOST; default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65_535, help="HTTP port (WFSCHED_PORT; default 8000)")] = None,
    db: Db = None,
    data_root: Annotated[
        list[Path] | None,
        typer.Option(help="folder image paths may point into; repeatable (WFSCHED_DATA_ROOTS, separated by ':')"),
    ] = None,
    results_dir: Annotated[
        Path | None, typer.Option(help="where job results are written (WFSCHED_RESULTS_DIR)")
    ] = None,
    max_active_users: Annotated[
        int | None, typer.Option(min=1, help="users with running work at once (WFSCHED_MAX_ACTIVE_USERS; default 3)")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="join this Ray cluster (e.g. auto) instead of starting one (WFSCHED_ADDRESS)")
    ] = None,
    log_level: LogLevel = None,
    restart_control: Annotated[
        bool,
        typer.Option(
            help="joined to a cluster: stop the wfsched actors an earlier start left running there, so that "
            "this start's code and settings apply (their running jobs start again on the new ones)"
        ),
    ] = False,
) -> None:
    """run the service locally (or on a Ray cluster) until interrupted"""
    from wfsched.api.server import serve_until_interrupted

    settings = Settings.from_env(
        log_level=log_level,
        host=host,
        port=port,
        db=db,
        data_roots=tuple(data_root) if data_root else None,
        results_dir=results_dir,
        max_active_users=max_active_users,
        address=address,
    )
    logs.console(settings.log_level)  # after Serve's import, which sets its logger's level
    raise typer.Exit(serve_until_interrupted(settings, restart_control=restart_control))


@app.command()
def fetch() -> None:
    """fetch the InstanSeg models and the sample slide into the cache"""
    from wfsched.cli.fetch import fetch_assets

    assets = fetch_assets(Settings.from_env().cache_dir)
    for name, path in assets.models.items():
        print(f"model {name}: {path}")
    print(f"sample slide: {assets.sample_slide}")


@app.command()
def demo(
    port: Annotated[int | None, typer.Option(min=1, max=65_535, help="HTTP port (WFSCHED_PORT; default 8000)")] = None,
    log_level: LogLevel = None,
) -> None:
    """fetch, start the embedded service, segment the sample slide, stop"""
    from wfsched.cli.demo import run_demo

    settings = Settings.from_env(port=port, log_level=log_level)
    logs.console(settings.log_level)  # after Serve's import, which sets its logger's level
    raise typer.Exit(run_demo(settings))


@keys.command("create")
def keys_create(
    user: Annotated[str, typer.Option(help="the user id the key stands for", show_default=False)], db: Db = None
) -> None:
    """make a key for a user; printed once only"""
    record, key = ApiKeyStore(Settings.from_env(db=db).db).create(user)
    print(f"key {record.key_id} for user {record.user_id} (shown once; only its hash is kept):", file=sys.stderr)
    print(key)


@keys.command("list")
def keys_list(db: Db = None) -> None:
    """every key: id, user, created, revoked"""
    listed = ApiKeyStore(Settings.from_env(db=db).db).list_keys()
    for key in listed:
        revoked = f"revoked {_when(key.revoked_at)}" if key.revoked_at else "active"
        print(f"{key.key_id}  {key.prefix:<20} {key.user_id:<24} created {_when(key.created_at)}  {revoked}")
    if not listed:
        print("no API keys")


@keys.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id, as `keys list` shows it")], db: Db = None
) -> None:
    """revoke a key; refused within seconds"""
    key = ApiKeyStore(Settings.from_env(db=db).db).revoke(key_id)
    print(f"key {key.key_id} of user {key.user_id} revoked {_when(key.revoked_at)}")


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


# Listed in `wfsched --help` in this order: the service's commands, then the client's.
app.add_typer(keys, name="keys")
add_client_commands(app)
