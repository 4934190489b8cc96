from __future__ import annotations

import io
import re

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
    with ProgressBoard(WORKFLOW, out) as board:
        board.draw()
        board.apply({"type": "job.progress", "data": {"job_id": "cells", "done": 3, "total": 12, "eta_s": 9.0}})
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
    board.apply({"type": "job.state", "data": {"job_id": "cells", "status": "failed", "error": "no model"}})
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 + 2 and lines[-2].startswith("cells") and lines[-1].strip() == "no model"
