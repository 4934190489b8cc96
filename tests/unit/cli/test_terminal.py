from __future__ import annotations

import io
import re
from typing import Any

from wfsched.cli.terminal import ProgressBoard
from wfsched.models.event import Event
from wfsched.models.state import JobRecord, WorkflowDetail


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def job(job_id: str, status: str, index: int) -> JobRecord:
    return JobRecord(
        workflow_id="w", job_id=job_id, index=index, branch="b1", job_type="t", image_path="s.svs", status=status
    )


WORKFLOW = WorkflowDetail(
    workflow_id="w",
    user_id="u",
    name="n",
    status="running",
    created_at=0.0,
    branches={"b1": ["tissue", "cells"]},
    jobs=[job("tissue", "succeeded", 0), job("cells", "running", 1)],
)


def event(kind: str, data: dict[str, Any]) -> Event:
    return Event(workflow_id="w", seq=1, type=kind, ts=0.0, data=data)


def test_bars_redraw_in_place_on_a_terminal() -> None:
    out = Tty()
    with ProgressBoard(WORKFLOW, out) as board:
        board.draw()
        board.apply(event("job.progress", {"job_id": "cells", "done": 3, "total": 12, "eta_s": 9.0}))
    text = out.getvalue()
    assert "\x1b[1A\x1b[2K" in text  # rich moved back over the lines it drew and cleared them
    last = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text.rsplit("\x1b[2K", 1)[-1]).splitlines()
    assert last[0] == "workflow running"
    assert "tissue" in last[1] and "100%" in last[1] and "succeeded" in last[1]
    assert "cells" in last[2] and "25%" in last[2] and "running" in last[2] and "3/12" in last[2]


def test_a_log_gets_only_the_lines_that_changed() -> None:
    out = io.StringIO()
    board = ProgressBoard(WORKFLOW, out)
    board.draw()
    board.apply(event("job.state", {"job_id": "cells", "status": "failed", "error": "no model"}))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 + 2 and lines[-2].startswith("cells") and lines[-1].strip() == "no model"
