"""The segmentation task: a batch of tiles in, the objects each tile owns out.

`segment_tiles_local` is the plain function (unit tests call it directly); `segment_tiles` is the
same function as a Ray task. Each worker process keeps its model and open slides between calls, so
a model loads once per worker, not once per batch. Reading the next tile runs in a thread while the
model works on the current one: tiffslide's decoding and torch's kernels both release the GIL.

A reused worker must never be left broken for the next tenant's batch. `ray.cancel` interrupts a
task wherever it is (KeyboardInterrupt), so: InstanSeg's import is all or nothing, and a batch that
ends for any reason other than its input (a JobError) retires its worker once Ray has stored the
result, so the next batch gets a fresh process.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import ray
import torch

from wfsched.exceptions import JobError, ModelNotFoundError
from wfsched.imaging.slide import SlideInfo, open_slide, read_window_at_mpp
from wfsched.imaging.stitch import TileResult, keep_core_objects
from wfsched.imaging.tiling import Tile, TileGrid

Target = Literal["nuclei", "cells"]

log = logging.getLogger(__name__)

# Ray retires a task's worker after `max_calls` calls (0: never). Retiring a worker after a failed
# batch goes through that same path, which counts only when this is above 0; a million batches
# (weeks of a busy GPU) otherwise never retires a healthy worker with its model loaded.
MAX_BATCHES_PER_WORKER = 1_000_000


@dataclass(frozen=True)
class SegmentSpec:
    """What every batch of one job shares; small, so it travels with each task."""

    slide: SlideInfo
    grid: TileGrid
    model_path: str
    target: Target = "nuclei"


@dataclass(frozen=True)
class ModelInfo:
    pixel_size_um: float
    cells_and_nuclei: bool


_lock = threading.Lock()


@functools.lru_cache(maxsize=4)
def load_model(model_path: str, device: str) -> Any:
    """An InstanSeg predictor for a TorchScript file, once per (file, device) in this process."""
    InstanSeg = _import_instanseg()

    if not Path(model_path).is_file():
        raise ModelNotFoundError(f"model file {model_path!r} is not on this machine: run `wfsched fetch`")
    try:
        with warnings.catch_warnings():
            # InstanSeg ships TorchScript; torch 2.13 deprecates loading it in favour of torch.export.
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*deprecated.*")
            module = torch.jit.load(model_path, map_location=device)
    except Exception as error:  # torch raises RuntimeError/ValueError variants for bad archives
        raise JobError(f"model file {model_path!r} is not a TorchScript InstanSeg model: {error}") from error
    module.eval()
    return InstanSeg(module, device=device, verbosity=0)


def _import_instanseg() -> Any:
    """InstanSeg's predictor class, imported all or nothing (heavy; needed only where inference runs).

    An import interrupted half-way (a cancel lands in it) leaves modules in `sys.modules` that hold
    the half-built ones; a later import would find them and fail (matplotlib without
    `get_data_path`, say). So every module this import added is dropped again if it does not end.
    """
    before = set(sys.modules)
    try:
        from instanseg import InstanSeg
    except BaseException:
        for name in set(sys.modules) - before:
            sys.modules.pop(name, None)
        raise
    return InstanSeg


def model_info(model_path: str) -> ModelInfo:
    """The model's pixel size and outputs, read on CPU (the runner needs them to plan tiles)."""
    predictor = load_model(model_path, "cpu")
    return ModelInfo(float(predictor.instanseg.pixel_size), bool(predictor.instanseg.cells_and_nuclei))


@functools.lru_cache(maxsize=8)
def _open_slide_cached(path: str) -> Any:
    return open_slide(Path(path))


def infer_labels(predictor: Any, rgb: npt.NDArray[np.uint8], target: Target) -> npt.NDArray[np.int32]:
    """Instance labels (h, w) for one RGB tile already at the model's pixel size."""
    image = torch.from_numpy(rgb).permute(2, 0, 1).float()
    with torch.inference_mode(), warnings.catch_warnings():
        # InstanSeg always enters CUDA autocast and its model uses sparse CSR tensors; on CPU both
        # only warn that they do nothing special. Harmless, and noise in every worker's log.
        warnings.filterwarnings("ignore", message=".*autocast.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support.*", category=UserWarning)
        # pixel_size=None: the tile is already on the working grid, so InstanSeg must not rescale;
        # normalise=True applies InstanSeg's own per-image percentile normalisation.
        labels = predictor.eval_small_image(
            image, pixel_size=None, normalise=True, return_image_tensor=False, target=target
        )
    channel = 1 if target == "cells" and labels.shape[1] > 1 else 0
    return np.asarray(labels[0, channel].to("cpu", torch.int32).numpy(), dtype=np.int32)


def segment_tiles_local(spec: SegmentSpec, tiles: Sequence[Tile], device: str | None = None) -> list[TileResult]:
    """Read, segment and trim each tile; the plain function under the Ray task."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    predictor = load_model(spec.model_path, device)
    slide = _open_slide_cached(str(spec.slide.path))
    results: list[TileResult] = []
    # One reader thread, one tile ahead: the next tile decodes while this one is inferred, and a
    # large batch of large tiles never sits decoded in memory all at once.
    with _lock, ThreadPoolExecutor(max_workers=1, thread_name_prefix="tile-reader") as reader:

        def read(tile: Tile) -> Future[npt.NDArray[np.uint8]]:
            return reader.submit(read_window_at_mpp, slide, spec.slide, tile.window, spec.grid.working_mpp)

        upcoming = read(tiles[0]) if tiles else None
        for index, tile in enumerate(tiles):
            assert upcoming is not None
            rgb = upcoming.result()
            upcoming = read(tiles[index + 1]) if index + 1 < len(tiles) else None
            labels = infer_labels(predictor, rgb, spec.target)
            results.append(keep_core_objects(labels, tile, spec.grid))
    return results


def retire_worker_after_task(function_name: str, module_name: str) -> bool:
    """Have Ray end this worker once the running task's result is stored, as `max_calls` does.

    Ray counts a worker's calls of each function and, once the count reaches the function's
    `max_calls`, raises SystemExit after storing the task's outputs, so the caller still gets this
    task's result or error and the next task gets a fresh worker. Ray has no public call for "this
    one now", so this sets the count one short of the limit. Returns False (and the worker stays)
    where that bookkeeping is not found: the function has no `max_calls` or this is not a worker.
    """
    manager = ray._private.worker.global_worker.function_actor_manager
    for descriptor, info in list(getattr(manager, "execution_infos", {}).items()):
        named = (getattr(descriptor, "function_name", None), getattr(descriptor, "module_name", None))
        if named == (function_name, module_name) and info.max_calls > 0:
            manager._num_task_executions[descriptor.function_id] = info.max_calls - 1
            return True
    log.warning("cannot retire this worker after %s.%s: it stays in use", module_name, function_name)
    return False


@ray.remote(max_calls=MAX_BATCHES_PER_WORKER)
def segment_tiles(spec: SegmentSpec, tiles: Sequence[Tile]) -> list[TileResult]:
    """Ray task: `segment_tiles.options(num_gpus=...).remote(spec, tiles)`; GPU when Ray gave one."""
    try:
        device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
        return segment_tiles_local(spec, tiles, device)
    except JobError:  # the input's fault (a bad slide, a missing model): the worker is sound
        raise
    except BaseException:
        # A cancel (KeyboardInterrupt), out of memory, a CUDA error, a bug: whatever state the
        # model, torch or the imports were left in, no later batch runs in this process.
        retire_worker_after_task("segment_tiles", __name__)
        raise
