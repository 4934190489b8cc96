"""The client commands of the `wfsched` CLI: submit (and follow), list, status, cancel, results, events."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from wfsched.cli.client import Client
from wfsched.cli.terminal import ProgressBoard
from wfsched.models.state import WorkflowStatus

# Exit codes: 0 the workflow succeeded (or the command did its job); these otherwise. An API error
# or a usage error is EXIT_ERROR (click's own code for usage errors).
EXIT_FAILED, EXIT_CANCELLED, EXIT_ERROR = 1, 3, 2
DEFAULT_URL = "http://127.0.0.1:8000"
# The API's own page limit (routes/workflows.py).
MAX_LIST_LIMIT = 200

Url = Annotated[str, typer.Option(envvar="WFSCHED_URL", help="the service")]
User = Annotated[str | None, typer.Option(envvar="WFSCHED_USER", help="your user id, sent as X-User-ID")]
ApiKey = Annotated[
    str | None,
    typer.Option(
        envvar="WFSCHED_API_KEY",
        help="your API key, sent as Authorization: Bearer (the variable keeps it out of `ps`)",
        show_default=False,
    ),
]
WorkflowId = Annotated[str, typer.Argument(help="the workflow's id")]


def add_client_commands(app: typer.Typer) -> None:
    app.command("submit")(submit)
    app.command("follow")(follow)
    app.command("list")(list_workflows)
    app.command("status")(status)
    app.command("cancel")(cancel)
    app.command("results")(results)
    app.command("events")(events)


def client_of(url: str, user: str | None, api_key: str | None) -> Client:
    if not user and not api_key:
        raise typer.BadParameter(
            "give one (or set WFSCHED_USER or WFSCHED_API_KEY): the service needs to know who asks",
            param_hint="'--user' / '--api-key'",
        )
    return Client(url, user, api_key=api_key)


def submit(
    file: Annotated[
        typer.FileText, typer.Argument(metavar="FILE", help="the workflow: {name, jobs: [...]}; '-' reads stdin")
    ],
    follow: Annotated[bool, typer.Option("--follow", help="show progress bars until it ends")] = False,
    url: Url = DEFAULT_URL,
    user: User = None,
    api_key: ApiKey = None,
) -> None:
    """submit a workflow JSON file; --follow shows live progress"""
    client = client_of(url, user, api_key)
    created = client.submit(json.loads(file.read()))
    where = f", place in line {created.queue_position}" if created.queue_position else ""
    print(f"workflow {created.workflow_id} {created.status}{where}", flush=True)
    if follow:
        raise typer.Exit(follow_workflow(client, created.workflow_id))


def follow(workflow_id: WorkflowId, url: Url = DEFAULT_URL, user: User = None, api_key: ApiKey = None) -> None:
    """show a workflow's live progress until it ends"""
    raise typer.Exit(follow_workflow(client_of(url, user, api_key), workflow_id))


def follow_workflow(client: Client, workflow_id: str) -> int:
    """Bars until the workflow ends; its exit code (0 succeeded, 1 failed, 3 cancelled)."""
    with ProgressBoard(client.workflow(workflow_id)) as board:
        board.draw()
        for event in client.events(workflow_id):
            board.apply(event)
    codes = {WorkflowStatus.succeeded: 0, WorkflowStatus.failed: EXIT_FAILED, WorkflowStatus.cancelled: EXIT_CANCELLED}
    return codes.get(client.workflow(workflow_id).status, EXIT_ERROR)


def list_workflows(
    status: Annotated[WorkflowStatus | None, typer.Option(help="only workflows in this state")] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_LIST_LIMIT)] = 50,
    url: Url = DEFAULT_URL,
    user: User = None,
    api_key: ApiKey = None,
) -> None:
    """your workflows, newest first"""
    rows = client_of(url, user, api_key).list_workflows(status, limit).workflows
    for w in rows:
        place = f"  (place {w.queue_position})" if w.queue_position else ""
        print(f"{w.workflow_id}  {w.status:<9}  {w.name}{place}")
    if not rows:
        print("no workflows")


def status(workflow_id: WorkflowId, url: Url = DEFAULT_URL, user: User = None, api_key: ApiKey = None) -> None:
    """one workflow and its jobs"""
    workflow = client_of(url, user, api_key).workflow(workflow_id)
    print(f"{workflow.workflow_id}  {workflow.name}  {workflow.status}")
    for job in workflow.jobs:
        progress = f"{job.progress_done}/{job.progress_total}" if job.progress_total else ""
        print(f"  {job.branch:<12} {job.job_id:<20} {job.job_type:<18} {job.status:<9} {progress}")
        if job.error:
            print(f"      {job.error}")


def cancel(workflow_id: WorkflowId, url: Url = DEFAULT_URL, user: User = None, api_key: ApiKey = None) -> None:
    """cancel a workflow"""
    workflow = client_of(url, user, api_key).cancel(workflow_id)
    print(f"workflow {workflow.workflow_id} {workflow.status}")


def results(
    workflow_id: WorkflowId,
    dest: Annotated[Path, typer.Option(help="folder to write <workflow>/<job>/ into")] = Path("."),
    url: Url = DEFAULT_URL,
    user: User = None,
    api_key: ApiKey = None,
) -> None:
    """download every artifact of a workflow's jobs"""
    client = client_of(url, user, api_key)
    count = 0
    for job in client.workflow(workflow_id).jobs:
        for name in job.result.artifacts if job.result else []:
            print(client.download(workflow_id, job.job_id, name, dest / workflow_id / job.job_id))
            count += 1
    print(f"{count} artifacts in {dest / workflow_id}", file=sys.stderr)


def events(
    workflow_id: Annotated[str | None, typer.Argument(help="the workflow's id; none: all of yours")] = None,
    after: Annotated[int, typer.Option(min=0, help="resume after this event id")] = 0,
    url: Url = DEFAULT_URL,
    user: User = None,
    api_key: ApiKey = None,
) -> None:
    """print events as JSON lines: one workflow's, or all of yours"""
    for event in client_of(url, user, api_key).events(workflow_id, after=after):
        print(event.model_dump_json(), flush=True)
