"""`segment_tiles`: the segmentation work of `segment.py` as a Ray task, GPU when Ray gave one.

A reused worker must never be left broken for the next tenant's batch. `ray.cancel` interrupts a
task wherever it is (KeyboardInterrupt), so: InstanSeg's import is all or nothing (segment.py),
and a batch that ends for any reason other than its input (a JobError) retires its worker once
Ray has stored the result, so the next batch gets a fresh process.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import ray
import torch

from wfsched.exceptions import JobError
from wfsched.imaging.segment import SegmentedBatch, SegmentSpec, segment_tiles_local
from wfsched.imaging.tiling import Tile
from wfsched.observe import logs

log = logging.getLogger(__name__)

# Ray retires a task's worker after `max_calls` calls (0: never). Retiring a worker after a failed
# batch goes through that same path, which counts only when this is above 0; a million batches
# (weeks of a busy GPU) otherwise never retires a healthy worker with its model loaded.
MAX_BATCHES_PER_WORKER = 1_000_000


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
def segment_tiles(
    spec: SegmentSpec, tiles: Sequence[Tile], log_fields: Mapping[str, str] | None = None
) -> SegmentedBatch:
    """Ray task: `segment_tiles.options(num_gpus=...).remote(spec, tiles)`; GPU when Ray gave one.

    `log_fields` (request, tenant, workflow and job, observe/logs.py) go on every line it logs.
    """
    logs.install()
    with logs.log_context(**(log_fields or {})):
        try:
            device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
            batch = segment_tiles_local(spec, tiles, device)
        except JobError:  # the input's fault (a bad slide, a missing model): the worker is sound
            raise
        except BaseException:
            # A cancel (KeyboardInterrupt), out of memory, a CUDA error, a bug: whatever state the
            # model, torch or the imports were left in, no later batch runs in this process.
            retire_worker_after_task("segment_tiles", __name__)
            log.warning("segmenting %d tiles stopped; this worker retires after it", len(tiles))
            raise
        indices = ", ".join(str(tile.index) for tile in tiles)
        log.info(
            "segmented %d tiles on %s in %.2f s (tiles %s)", len(tiles), device, batch.stage_s.get("wall", 0.0), indices
        )
        return batch
