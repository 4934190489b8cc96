"""The segmentation task: a batch of tiles in, the objects each tile owns out.

`segment_tiles_local` is the plain function (unit tests call it directly); `segment_tiles` is the
same function as a Ray task. Each worker process keeps its model and open slides between calls
(`max_calls=0` keeps the worker alive), so a model loads once per worker, not once per batch.
Reading the next tile runs in a thread while the model works on the current one: tiffslide's
decoding and torch's kernels both release the GIL.
"""

from __future__ import annotations

import functools
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
    from instanseg import InstanSeg  # heavy import, needed only where inference runs

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


@ray.remote(max_calls=0)
def segment_tiles(spec: SegmentSpec, tiles: Sequence[Tile]) -> list[TileResult]:
    """Ray task: `segment_tiles.options(num_gpus=...).remote(spec, tiles)`; GPU when Ray gave one."""
    device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
    return segment_tiles_local(spec, tiles, device)
