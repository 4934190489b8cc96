"""The client commands of the `wfsched` CLI: submit (and follow), list, status, cancel, results, events."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from wfsched.cli.client import ApiError, Client
from wfsched.cli.terminal import ProgressBoard
from wfsched.models.state import WorkflowStatus

# Exit codes: 0 the workflow succeeded (or the command did its job); these otherwise.
EXIT_FAILED, EXIT_CANCELLED, EXIT_ERROR = 1, 3, 2
DEFAULT_URL = "http://127.0.0.1:8000"


def add_client_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def client_parser(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument("--url", help=f"the service (WFSCHED_URL; default {DEFAULT_URL})")
        parser.add_argument("--user", help="your user id, sent as X-User-ID (WFSCHED_USER)")
        parser.add_argument(
            "--api-key",
            help="your API key, sent as Authorization: Bearer (WFSCHED_API_KEY, which keeps it out of `ps`)",
        )
        return parser

    submit = client_parser("submit", "submit a workflow JSON file; --follow shows live progress")
    submit.add_argument("file", type=Path, help="the workflow: {name, jobs: [...]}; '-' reads stdin")
    submit.add_argument("--follow", action="store_true", help="show progress bars until it ends")
    submit.set_defaults(run=run_submit)
    follow = client_parser("follow", "show a workflow's live progress until it ends")
    follow.add_argument("workflow_id")
    follow.set_defaults(run=run_follow)
    listing = client_parser("list", "your workflows, newest first")
    listing.add_argument("--status", choices=[status.value for status in WorkflowStatus])
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(run=run_list)
    status = client_parser("status", "one workflow and its jobs")
    status.add_argument("workflow_id")
    status.set_defaults(run=run_status)
    cancel = client_parser("cancel", "cancel a workflow")
    cancel.add_argument("workflow_id")
    cancel.set_defaults(run=run_cancel)
    results = client_parser("results", "download every artifact of a workflow's jobs")
    results.add_argument("workflow_id")
    results.add_argument("--dest", type=Path, default=Path("."), help="folder to write <workflow>/<job>/ into")
    results.set_defaults(run=run_results)
    events = client_parser("events", "print events as JSON lines: one workflow's, or all of yours")
    events.add_argument("workflow_id", nargs="?")
    events.add_argument("--after", type=int, default=0, help="resume after this event id")
    events.set_defaults(run=run_events)


def client_of(args: argparse.Namespace) -> Client:
    import os

    user = args.user or os.environ.get("WFSCHED_USER")
    api_key = args.api_key or os.environ.get("WFSCHED_API_KEY")
    if not user and not api_key:
        raise SystemExit(
            "wfsched: give --user or --api-key (or set WFSCHED_USER or WFSCHED_API_KEY):"
            " the service needs to know who asks"
        )
    return Client(args.url or os.environ.get("WFSCHED_URL") or DEFAULT_URL, user, api_key=api_key)


def guarded(run: Any) -> Any:
    """Print API errors as one sentence and exit 2, instead of a traceback."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return int(run(args) or 0)
        except ApiError as error:
            print(f"wfsched: {error}", file=sys.stderr)
            return EXIT_ERROR

    return wrapper


@guarded
def run_submit(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text()
    client = client_of(args)
    created = client.submit(json.loads(text))
    where = f", place in line {created['queue_position']}" if created.get("queue_position") else ""
    print(f"workflow {created['workflow_id']} {created['status']}{where}", flush=True)
    return follow_workflow(client, created["workflow_id"]) if args.follow else 0


@guarded
def run_follow(args: argparse.Namespace) -> int:
    return follow_workflow(client_of(args), args.workflow_id)


def follow_workflow(client: Client, workflow_id: str) -> int:
    with ProgressBoard(client.workflow(workflow_id)) as board:
        board.draw()
        for event in client.events(workflow_id):
            board.apply(event)
    final = client.workflow(workflow_id)
    return {"succeeded": 0, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}.get(final["status"], EXIT_ERROR)


@guarded
def run_list(args: argparse.Namespace) -> int:
    rows = client_of(args).list_workflows(args.status, args.limit)
    for w in rows:
        place = f"  (place {w['queue_position']})" if w.get("queue_position") else ""
        print(f"{w['workflow_id']}  {w['status']:<9}  {w['name']}{place}")
    if not rows:
        print("no workflows")
    return 0


@guarded
def run_status(args: argparse.Namespace) -> int:
    workflow = client_of(args).workflow(args.workflow_id)
    print(f"{workflow['workflow_id']}  {workflow['name']}  {workflow['status']}")
    for job in workflow["jobs"]:
        progress = f"{job['progress_done']}/{job['progress_total']}" if job["progress_total"] else ""
        print(f"  {job['branch']:<12} {job['job_id']:<20} {job['job_type']:<18} {job['status']:<9} {progress}")
        if job["error"]:
            print(f"      {job['error']}")
    return 0


@guarded
def run_cancel(args: argparse.Namespace) -> int:
    workflow = client_of(args).cancel(args.workflow_id)
    print(f"workflow {workflow['workflow_id']} {workflow['status']}")
    return 0


@guarded
def run_results(args: argparse.Namespace) -> int:
    client = client_of(args)
    workflow = client.workflow(args.workflow_id)
    count = 0
    for job in workflow["jobs"]:
        for name in (job["result"] or {}).get("artifacts", []):
            path = client.download(args.workflow_id, job["job_id"], name, args.dest / args.workflow_id / job["job_id"])
            print(path)
            count += 1
    print(f"{count} artifacts in {args.dest / args.workflow_id}", file=sys.stderr)
    return 0


@guarded
def run_events(args: argparse.Namespace) -> int:
    for event in client_of(args).events(args.workflow_id, after=args.after):
        print(json.dumps(event), flush=True)
    return 0
