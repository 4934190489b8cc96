"""The main job on the embedded default: fetch, start, segment the sample slide, report, stop."""

from __future__ import annotations

import json
import time

from wfsched.api import server
from wfsched.cli.client import Client
from wfsched.cli.fetch import fetch_assets
from wfsched.config import Settings
from wfsched.models.state import WorkflowStatus
from wfsched.store.paths import workflow_output_dir

DEMO_USER = "demo"


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
    server.start(settings)
    client = Client(f"http://{settings.host}:{settings.port}", DEMO_USER)
    try:
        started = time.monotonic()
        workflow_id = client.submit(sample_workflow(str(assets.sample_slide))).workflow_id
        print(f"submitted workflow {workflow_id} on {assets.sample_slide.name}", flush=True)
        last = ""
        while True:
            progress = client.progress(workflow_id)
            line = "  ".join(f"{j.job_id}: {j.status} {j.percent:.0f}%" for j in progress.jobs)
            if line != last:
                print(f"[{time.monotonic() - started:6.1f} s] {line}", flush=True)
                last = line
            if progress.status.finished:
                break
            time.sleep(0.5)
        workflow = client.workflow(workflow_id)
        for job in workflow.jobs:
            print(f"\n{job.job_id} ({job.job_type}): {job.status}")
            print(json.dumps(job.result.fields if job.result else {"error": job.error}, indent=2))
        results = workflow_output_dir(settings.results_dir, DEMO_USER, workflow_id)
        print(f"\nworkflow {workflow.status} in {time.monotonic() - started:.1f} s; results in {results}")
        return 0 if workflow.status == WorkflowStatus.succeeded else 1
    finally:
        client.close()
        server.stop()
