"""The `wfsched` command: serve, fetch, keys (admin), and the client commands."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from wfsched.cli.commands import add_client_commands
from wfsched.config import Settings
from wfsched.exceptions import WfschedError
from wfsched.store.keys import ApiKeyStore


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    return int(args.run(args) or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wfsched", description=__doc__)
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser("serve", help="run the service locally (or on a Ray cluster) until interrupted")
    serve.add_argument("--host", help="HTTP host (WFSCHED_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (WFSCHED_PORT; default 8000)")
    serve.add_argument("--db", help="SQLite file (WFSCHED_DB)")
    serve.add_argument(
        "--data-root",
        action="append",
        dest="data_roots",
        help="folder image paths may point into; repeatable (WFSCHED_DATA_ROOTS, separated by ':')",
    )
    serve.add_argument("--results-dir", help="where job results are written (WFSCHED_RESULTS_DIR)")
    serve.add_argument("--max-active-users", type=int, help="users with running work at once (default 3)")
    serve.add_argument("--address", help="join this Ray cluster (e.g. auto) instead of starting one")
    serve.set_defaults(run=_serve)

    fetch = commands.add_parser("fetch", help="fetch the InstanSeg models and the sample slide into the cache")
    fetch.set_defaults(run=_fetch)

    demo = commands.add_parser("demo", help="fetch, start the embedded service, segment the sample slide, stop")
    demo.add_argument("--port", type=int, help="HTTP port (default 8000)")
    demo.set_defaults(run=_demo)

    keys = commands.add_parser("keys", help="make, list and revoke API keys (auth_mode api_key), in the database")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    on_db = argparse.ArgumentParser(add_help=False)
    on_db.add_argument("--db", help="the service's SQLite file (WFSCHED_DB)")
    create = key_commands.add_parser("create", parents=[on_db], help="make a key for a user; printed once only")
    create.add_argument("--user", required=True, help="the user id the key stands for")
    create.set_defaults(run=_keys_create)
    listing = key_commands.add_parser("list", parents=[on_db], help="every key: id, user, created, revoked")
    listing.set_defaults(run=_keys_list)
    revoke = key_commands.add_parser("revoke", parents=[on_db], help="revoke a key; refused within seconds")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=_keys_revoke)
    add_client_commands(commands)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    names = ("host", "port", "db", "data_roots", "results_dir", "max_active_users", "address")
    return Settings.from_env(**{name: getattr(args, name, None) for name in names})


def _serve(args: argparse.Namespace) -> int:
    from wfsched.api.server import serve_until_interrupted

    return serve_until_interrupted(_settings(args))


def _fetch(args: argparse.Namespace) -> int:
    from wfsched.cli.fetch import fetch_assets

    assets = fetch_assets(Settings.from_env().cache_dir)
    for name, path in assets.models.items():
        print(f"model {name}: {path}")
    print(f"sample slide: {assets.sample_slide}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from wfsched.cli.demo import run_demo

    return run_demo(Settings.from_env(port=args.port))


def _key_store(args: argparse.Namespace) -> ApiKeyStore:
    return ApiKeyStore(Settings.from_env(db=args.db).db)


def _keys_create(args: argparse.Namespace) -> int:
    try:
        record, key = _key_store(args).create(args.user)
    except WfschedError as error:
        print(f"wfsched: {error.detail}", file=sys.stderr)
        return 2
    print(f"key {record.key_id} for user {record.user_id} (shown once; only its hash is kept):", file=sys.stderr)
    print(key)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    keys = _key_store(args).list_keys()
    for key in keys:
        revoked = f"revoked {_when(key.revoked_at)}" if key.revoked_at else "active"
        print(f"{key.key_id}  {key.prefix:<20} {key.user_id:<24} created {_when(key.created_at)}  {revoked}")
    if not keys:
        print("no API keys")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    try:
        key = _key_store(args).revoke(args.key_id)
    except WfschedError as error:
        print(f"wfsched: {error.detail}", file=sys.stderr)
        return 2
    print(f"key {key.key_id} of user {key.user_id} revoked {_when(key.revoked_at)}")
    return 0


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
