"""The main job on the embedded default: fetch, start, segment the sample slide, report, stop."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from wfsched.api import server
from wfsched.cli.client import Client
from wfsched.cli.commands import follow_workflow
from wfsched.cli.fetch import fetch_assets
from wfsched.config import Settings
from wfsched.models.state import JobRecord, JobStatus
from wfsched.store.paths import workflow_output_dir

DEMO_USER = "demo"
# The tissue_mask artifact the web page draws the tissue outline and the cells over.
PICTURE_NAME = "thumbnail.png"


def sample_workflow(slide: str) -> dict[str, object]:
    return {
        "name": "Cell Segmentation Workflow",
        "jobs": [
            {"job_id": "tissue", "job_type": "tissue_mask", "image_path": slide, "branch": "branch-1"},
            {
                "job_id": "cells",
                "job_type": "cell_segmentation",
                "image_path": slide,
                "branch": "branch-1",
                "depends_on": ["tissue"],
                "params": {"model": "brightfield_nuclei"},
            },
        ],
    }


def run_demo(settings: Settings) -> int:
    assets = fetch_assets(settings.cache_dir)
    settings = settings.model_copy(update={"data_roots": (*settings.data_roots, assets.sample_slide.parent)})
    print(f"wfsched demo: starting the service on port {settings.port} (a local Ray and Serve) …", flush=True)
    endpoints = server.start(settings)
    try:
        return demo_console(endpoints, DEMO_USER, sample_workflow(str(assets.sample_slide)), settings.results_dir)
    finally:
        server.stop()


def demo_console(endpoints: server.Endpoints, user: str, workflow: dict[str, Any], results_dir: Path) -> int:
    """What the demo shows once the service runs: where things are, live bars, a summary; its exit code."""
    print(*endpoints.lines(), sep="\n", flush=True)
    started = time.monotonic()
    client = Client(endpoints.url, user)
    try:
        workflow_id = client.submit(workflow).workflow_id
        print(f"workflow {workflow_id} submitted as user {user}", flush=True)
        code = follow_workflow(client, workflow_id)
        done = client.workflow(workflow_id)
    finally:
        client.close()
    print(f"\nworkflow {done.status} in {time.monotonic() - started:.1f} s")
    width = max(len(job.job_id) for job in done.jobs)
    for job in done.jobs:
        print(f"  {job.job_id:<{width}}  {job.job_type:<18} {job.status:<9} {_summary(job)}".rstrip())
    results = workflow_output_dir(results_dir, user, workflow_id)
    print(f"results   {results}")
    pictured = [job for job in done.jobs if job.lists_artifact(PICTURE_NAME)]
    if pictured:
        print(f"picture   {results / pictured[0].job_id / PICTURE_NAME}")
        print(
            "          with the tissue and the cells drawn over it: run `wfsched serve`, then open "
            f"{endpoints.url}/#/workflows/{workflow_id} as user {user}"
        )
    return code


def _summary(job: JobRecord) -> str:
    """A job's result in a few words: the counts a person looks at first."""
    if job.status == JobStatus.failed:
        return job.error or ""
    result = job.result.fields if job.result else {}
    if "cell_count" in result:
        density = result.get("cells_per_mm2")
        per_area = f", {density:,.0f} per mm²" if density is not None else ""
        return (
            f"{result['cell_count']:,} {result.get('target', 'nuclei')} on {result['tissue_area_mm2']:.2f} mm²"
            f"{per_area}; {result.get('tiles_segmented', 0)} tiles in {result.get('segment_s', 0):.1f} s"
        )
    if "tissue_area_mm2" in result:
        return f"{result['tissue_area_mm2']:.2f} mm² of tissue ({100 * result['tissue_fraction']:.0f} % of the slide)"
    return ""
