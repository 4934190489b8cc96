"""Live progress bars of a workflow's jobs in a terminal, fed by its events."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, TextIO

from wfsched.models.state import FINISHED_JOB

BAR_WIDTH = 28


@dataclass
class JobLine:
    job_id: str
    branch: str
    status: str = "pending"
    done: int = 0
    total: int = 0
    eta_s: float | None = None
    error: str | None = None

    @property
    def fraction(self) -> float:
        if self.status in FINISHED_JOB:
            return 1.0
        return self.done / self.total if self.total else 0.0

    def render(self, width: int) -> str:
        filled = round(self.fraction * BAR_WIDTH)
        bar = "█" * filled + "·" * (BAR_WIDTH - filled)
        counts = f"{self.done}/{self.total}" if self.total else ""
        eta = f"ETA {self.eta_s:.0f}s" if self.eta_s is not None and self.status == "running" else ""
        percent = f"{100 * self.fraction:5.1f}%"
        text = f"{self.job_id:<{width}} {self.branch:<10} [{bar}] {percent} {self.status:<9} {counts} {eta}"
        return text.rstrip() + (f"\n    {self.error}" if self.error and self.status == "failed" else "")


class ProgressBoard:
    """One line per job, redrawn in place on a terminal, printed line by line elsewhere."""

    def __init__(self, workflow: dict[str, Any], out: TextIO = sys.stdout) -> None:
        self.out = out
        self.status = str(workflow["status"])
        self.queue_position = workflow.get("queue_position")
        self.lines = {
            j["job_id"]: JobLine(
                j["job_id"], j["branch"], j["status"], j["progress_done"], j["progress_total"], None, j.get("error")
            )
            for j in workflow["jobs"]
        }
        self._width = max(len(job_id) for job_id in self.lines)
        self._drawn = 0
        self._tty = out.isatty()
        self._printed: dict[str, str] = {}

    def apply(self, event: dict[str, Any]) -> None:
        kind, data = event["type"], event["data"]
        line = self.lines.get(data.get("job_id", ""))
        if kind == "job.state" and line:
            line.status, line.error = data["status"], data.get("error")
        elif kind == "job.progress" and line:
            line.done, line.total, line.eta_s = data["done"], data["total"], data.get("eta_s")
        elif kind == "workflow.queued":
            self.status, self.queue_position = "queued", data["queue_position"]
        elif kind in ("workflow.admitted", "workflow.finished"):
            self.status, self.queue_position = data["status"], None
        self.draw()

    def draw(self) -> None:
        """On a terminal, redraw every line in place; in a log, print only the lines that changed."""
        header = f"workflow {self.status}" + (f" (place in line {self.queue_position})" if self.queue_position else "")
        rows = {"": header, **{job_id: line.render(self._width) for job_id, line in self.lines.items()}}
        if self._tty:
            if self._drawn:
                self.out.write(f"\x1b[{self._drawn}F\x1b[J")  # back to the first line drawn, clear below
            shown = list(rows.values())
            self._drawn = sum(row.count("\n") + 1 for row in shown)
        else:
            shown = [row for key, row in rows.items() if self._printed.get(key) != row]
            self._printed = rows
        if shown:
            self.out.write("\n".join(shown) + "\n")
            self.out.flush()
