from __future__ import annotations

import io

from wfsched.cli.terminal import ProgressBoard


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


WORKFLOW = {
    "status": "running",
    "queue_position": None,
    "jobs": [
        {"job_id": "tissue", "branch": "b1", "status": "succeeded", "progress_done": 0, "progress_total": 0},
        {"job_id": "cells", "branch": "b1", "status": "running", "progress_done": 0, "progress_total": 0},
    ],
}


def test_bars_redraw_in_place_on_a_terminal() -> None:
    out = Tty()
    board = ProgressBoard(WORKFLOW, out)
    board.draw()
    board.apply({"type": "job.progress", "data": {"job_id": "cells", "done": 3, "total": 12, "eta_s": 9.0}})
    text = out.getvalue()
    assert "\x1b[3F\x1b[J" in text  # moved back over the three lines drawn before
    last = text.split("\x1b[J")[-1].splitlines()
    assert last[0] == "workflow running"
    assert last[1].startswith("tissue ") and "100.0% succeeded" in last[1]
    assert "25.0% running" in last[2] and "3/12" in last[2] and "ETA 9s" in last[2]


def test_a_log_gets_only_the_lines_that_changed() -> None:
    out = io.StringIO()
    board = ProgressBoard(WORKFLOW, out)
    board.draw()
    board.apply({"type": "job.state", "data": {"job_id": "cells", "status": "failed", "error": "no model"}})
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 + 2 and lines[-2].startswith("cells") and lines[-1].strip() == "no model"
