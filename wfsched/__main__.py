"""The `wfsched` command: serve, fetch, and the client commands."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from wfsched.commands import add_client_commands
from wfsched.config import Settings


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
    add_client_commands(commands)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    names = ("host", "port", "db", "data_roots", "results_dir", "max_active_users", "address")
    return Settings.from_env(**{name: getattr(args, name, None) for name in names})


def _serve(args: argparse.Namespace) -> int:
    from wfsched.server import serve_until_interrupted

    return serve_until_interrupted(_settings(args))


def _fetch(args: argparse.Namespace) -> int:
    from wfsched.assets import fetch_assets

    assets = fetch_assets(Settings.from_env().cache_dir)
    for name, path in assets.models.items():
        print(f"model {name}: {path}")
    print(f"sample slide: {assets.sample_slide}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from wfsched.demo import run_demo

    return run_demo(Settings.from_env(port=args.port))


if __name__ == "__main__":
    sys.exit(main())
