"""The benchmark's Ray worker processes, and the CPU each used: where the two cores went."""

from __future__ import annotations

import contextlib
import itertools
import os
from typing import Any


def ray_workers() -> list[tuple[str, Any]]:
    """The Ray worker processes this benchmark started, each with its actor's name (from the title
    Ray gives the process; an idle worker's is IDLE)."""
    import psutil

    workers = []
    for process in sorted(psutil.Process().children(recursive=True), key=lambda p: p.pid):
        with contextlib.suppress(psutil.Error, IndexError):
            title = process.cmdline()[0]
            if title.startswith("ray::") and "IDLE" not in title:
                workers.append((title.split(".")[0].split(":", 2)[-1], process))
    return workers


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """CPU time (user + system) so far of this process, of each Ray worker (by its actor's name)
    and of every other process under this one (Ray's raylet and GCS, HAProxy), by pid."""
    import psutil

    def used(process: Any) -> float:
        times = process.cpu_times()
        return float(times.user + times.system)

    seconds = {os.getpid(): ("this benchmark's clients", used(psutil.Process()))}
    workers = dict((process.pid, name) for name, process in ray_workers())
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            seconds[process.pid] = (workers.get(process.pid) or process.name(), used(process))
    return seconds


def print_cpu(phases: list[tuple[str, float, dict[int, tuple[str, float]]]]) -> None:
    """Where the two cores went in each phase: CPU seconds of each process between snapshots
    (name, wall seconds at the snapshot, cpu_seconds())."""
    for (_, started, before), (phase, ended, after) in itertools.pairwise(phases):
        spent = {pid: (name, s - before.get(pid, ("", 0.0))[1]) for pid, (name, s) in after.items()}
        total = sum(s for _, s in spent.values())
        print(f"cpu while {phase}: {total:.1f} s in {ended - started:.1f} s ({total / (ended - started):.2f} cores)")
        for name, s in sorted(spent.values(), key=lambda item: -item[1]):
            if s >= 0.05 * total:
                print(f"  {name + ':':27s} {s:8.1f} s")
