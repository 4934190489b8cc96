"""Mean GPU busy % over a stretch of code, sampled with `nvidia-smi` (no Python GPU library needed).

    with GpuBusy() as busy:
        work()
    busy.mean_percent   # None where nvidia-smi is missing or gave no sample

`utilization.gpu` is the share of the driver's last sample period (1/6 s to 1 s) in which a kernel
ran, so short stretches read coarsely; the bench also reports the forward pass's share of the wall
time, which needs no sampling.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from types import TracebackType

SAMPLE_INTERVAL_MS = 50


class GpuBusy:
    def __init__(self, gpu_index: int = 0, enabled: bool = True) -> None:
        self.gpu_index = gpu_index
        self.enabled = enabled
        self.samples: list[tuple[float, float]] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._window: tuple[float, float] = (0.0, 0.0)

    def __enter__(self) -> GpuBusy:
        if self.enabled and shutil.which("nvidia-smi"):
            self._process = subprocess.Popen(
                [
                    "nvidia-smi",
                    f"--id={self.gpu_index}",
                    "--query-gpu=utilization.gpu",
                    "--format=csv,noheader,nounits",
                    f"--loop-ms={SAMPLE_INTERVAL_MS}",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()
            time.sleep(0.3)  # nvidia-smi's first sample comes after it has started
        self._window = (time.monotonic(), 0.0)
        return self

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            try:
                self.samples.append((time.monotonic(), float(line.strip())))
            except ValueError:
                continue

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._window = (self._window[0], time.monotonic())
        if self._process is not None:
            time.sleep(SAMPLE_INTERVAL_MS / 1000 * 2)  # the sample covering the last stretch
            self._process.terminate()
            self._process.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)

    @property
    def mean_percent(self) -> float | None:
        return self.mean_between(*self._window)

    def mean_between(self, start: float, end: float) -> float | None:
        """The mean of the samples taken between two `time.monotonic()` readings (one sample after)."""
        inside = [value for at, value in self.samples if start <= at <= end + SAMPLE_INTERVAL_MS / 1000 * 2]
        return round(sum(inside) / len(inside), 1) if inside else None
