"""Live progress of a workflow's jobs, fed by its events: rich's bars on a terminal, lines elsewhere."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import TracebackType
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from wfsched.models.event import Event, EventType
from wfsched.models.state import FINISHED_JOB, JobStatus, WorkflowDetail, job_percent

BAR_WIDTH = 28


@dataclass
class JobLine:
    job_id: str
    branch: str
    status: JobStatus = JobStatus.pending
    done: int = 0
    total: int = 0
    eta_s: float | None = None
    error: str | None = None

    @property
    def fraction(self) -> float:
        return job_percent(self.status, self.done, self.total) / 100

    def render(self, width: int) -> str:
        """The job as one plain line (for logs), with its error under it once it failed."""
        filled = round(self.fraction * BAR_WIDTH)
        bar = "█" * filled + "·" * (BAR_WIDTH - filled)
        counts = f"{self.done}/{self.total}" if self.total else ""
        eta = f"ETA {self.eta_s:.0f}s" if self.eta_s is not None and self.status == "running" else ""
        percent = f"{100 * self.fraction:5.1f}%"
        text = f"{self.job_id:<{width}} {self.branch:<10} [{bar}] {percent} {self.status:<9} {counts} {eta}"
        return text.rstrip() + (f"\n    {self.error}" if self.error and self.status == "failed" else "")


class _RateColumn(ProgressColumn):
    """Units per second, as rich measures them from the updates."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.1f}/s", style="progress.data.speed")


class ProgressBoard:
    """One bar per job with rate and ETA, redrawn in place on a terminal; in a log, changed lines only.

    Use it as a context manager, so the terminal's live display ends cleanly.
    """

    def __init__(self, workflow: WorkflowDetail, out: TextIO | None = None) -> None:
        # sys.stdout as it is now (not at import): a redirection or a test's capture made since counts.
        self.console = Console(file=out or sys.stdout, highlight=False)
        self.status = str(workflow.status)
        self.queue_position = workflow.queue_position
        self.lines = {
            j.job_id: JobLine(j.job_id, j.branch, j.status, j.progress_done, j.progress_total, None, j.error)
            for j in workflow.jobs
        }
        self._width = max(len(job_id) for job_id in self.lines)
        self._printed: dict[str, str] = {}
        self._live: Live | None = None
        self._bars = Progress(
            TextColumn(f"{{task.fields[job_id]:<{self._width}}} {{task.fields[branch]:<10}}"),
            BarColumn(bar_width=BAR_WIDTH),
            TaskProgressColumn(),
            TextColumn("{task.fields[status]:<9}"),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._tasks: dict[str, TaskID] = {
            job_id: self._bars.add_task("", total=None, job_id=job_id, branch=line.branch, status=line.status)
            for job_id, line in self.lines.items()
        }

    def __enter__(self) -> ProgressBoard:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.stop()

    def apply(self, event: Event) -> None:
        kind, data = event.type, event.data
        line = self.lines.get(data.get("job_id", ""))
        if kind == EventType.job_state and line:
            line.status, line.error = JobStatus(data["status"]), data.get("error")
        elif kind == EventType.job_progress and line:
            line.done, line.total, line.eta_s = data["done"], data["total"], data.get("eta_s")
        elif kind == EventType.workflow_queued:
            self.status, self.queue_position = "queued", data["queue_position"]
        elif kind in (EventType.workflow_admitted, EventType.workflow_finished):
            self.status, self.queue_position = data["status"], None
        self.draw()

    def draw(self) -> None:
        """On a terminal, update the live bars; in a log, print only the lines that changed."""
        header = f"workflow {self.status}" + (f" (place in line {self.queue_position})" if self.queue_position else "")
        if self.console.is_terminal:
            self._draw_live(header)
            return
        rows = {"": header, **{job_id: line.render(self._width) for job_id, line in self.lines.items()}}
        shown = [row for key, row in rows.items() if self._printed.get(key) != row]
        self._printed = rows
        if shown:
            self.console.file.write("\n".join(shown) + "\n")
            self.console.file.flush()

    def _draw_live(self, header: str) -> None:
        for job_id, line in self.lines.items():
            total = line.total or (1 if line.status in FINISHED_JOB else None)
            done = total if line.status in FINISHED_JOB else line.done
            self._bars.update(self._tasks[job_id], total=total, completed=done, status=line.status)
        errors = [
            f"{line.job_id}: {line.error}" for line in self.lines.values() if line.status == "failed" and line.error
        ]
        view = Group(Text(header), self._bars, *(Text(error, style="red") for error in errors))
        if self._live is None:
            self._live = Live(view, console=self.console, auto_refresh=False, transient=False)
            self._live.start()
        self._live.update(view, refresh=True)
