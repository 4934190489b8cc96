"""The segmentation task's work: a batch of tiles in, the objects each tile owns out.

`segment_tiles_local` is the plain function (tests and the Ray-less benchmark call it directly);
`wfsched.imaging.segment_task.segment_tiles` is the same function as a Ray task. Each worker
process keeps its model and open slides between calls, so a model loads once per worker.

Inside one call the tiles go through three stages at once, each on its own threads:

    decode (2 readers)  →  forward (model threads, one batch of tiles each)  →  post-process (1)

While the model runs on batch n, the readers decode batch n + 1 and the post-processing thread
keeps the core objects of batch n − 1; tiffslide's decoder, torch's kernels and OpenCV release the
GIL. On a GPU two model threads, each on its own CUDA stream, keep the device fed while either
waits on the host side of InstanSeg's instance assembly. A forward batch is one stack of same-size
windows: one host→device copy of uint8 pixels, the percentile normalisation on the device, one
model call, one copy of the labels back.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import torch

from wfsched.exceptions import JobError, ModelNotFoundError
from wfsched.imaging.slide import SlideInfo, open_slide, read_window_at_mpp
from wfsched.imaging.stitch import TileResult, keep_core_objects
from wfsched.imaging.tiling import Tile, TileGrid, batches

Target = Literal["nuclei", "cells"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentSpec:
    """What every batch of one job shares; small, so it travels with each task."""

    slide: SlideInfo
    grid: TileGrid
    model_path: str
    target: Target = "nuclei"
    #: Tiles per model call; None: FORWARD_BATCH_TILES of the device the task runs on.
    forward_batch_tiles: int | None = None
    #: Batches in the model at once; None: FORWARD_STREAMS of the device.
    forward_streams: int | None = None


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


# Tiles per model call by device, measured with bench/pipeline.py (README, "Speed"). On CPU a
# batch is slower than its tiles one by one (8.5 s against 7.5 s for four 512 px tiles on 2 cores).
FORWARD_BATCH_TILES = {"cuda": 4, "cpu": 1}
# Model threads per task, each on a CUDA stream of its own: while one waits on the host side of
# InstanSeg's post-processing (inside the TorchScript model), the other keeps the GPU busy.
FORWARD_STREAMS = {"cuda": 2, "cpu": 1}

# InstanSeg's normalisation: per image and channel, the 0.1th and 99.9th percentiles map to 0 and 1.
_NORMALISE_PERCENTILE = 0.1
_NORMALISE_EPSILON = 1e-3
# Decoding threads: two keep a 4-tile batch ahead of an H200's forward pass for 512 px tiles.
READER_THREADS = 2
STAGES = ("decode", "transfer", "forward", "postprocess")

T = TypeVar("T")


@dataclass
class SegmentedBatch:
    """What a segmentation task returns: the tiles' results and the seconds spent in each stage.

    Stages overlap, so their sum exceeds `wall`; `decode` and `postprocess` are summed over their
    threads. `transfer` is host↔device copying (0 on CPU), `forward` the normalisation and model.
    """

    results: list[TileResult]
    stage_s: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"
    forward_batch_tiles: int = 1
    forward_streams: int = 1


class StageClock:
    """Seconds per stage, added from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = dict.fromkeys(STAGES, 0.0)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] += seconds

    def timed(self, stage: str, work: Callable[..., T], *args: Any) -> T:
        started = time.perf_counter()
        try:
            return work(*args)
        finally:
            self.add(stage, time.perf_counter() - started)


def normalise_percentiles(pixels: torch.Tensor) -> torch.Tensor:
    """InstanSeg's percentile normalisation of a uint8 batch (b, c, h, w), on its device, as float32.

    Equal to `percentile_normalize` image by image (numpy's linear-interpolated percentiles), but
    from one 256-bin histogram per image and channel: no sort, and no host round trip per channel.
    """
    b, c, h, w = pixels.shape
    count = h * w
    planes = pixels.reshape(b * c, count).long()
    offsets = torch.arange(b * c, device=pixels.device).unsqueeze(1) * 256
    histogram = torch.bincount((planes + offsets).reshape(-1), minlength=b * c * 256).reshape(b * c, 256)
    cumulative = histogram.cumsum(1)

    def percentile(q: float) -> torch.Tensor:
        position = q / 100 * (count - 1)
        below = int(position)
        fraction = position - below
        ranks = torch.tensor([below, min(below + 1, count - 1)], device=pixels.device)
        # The value of rank k is the first bin whose cumulative count exceeds k.
        values = torch.searchsorted(cumulative, ranks.expand(b * c, 2).contiguous(), right=True).float()
        return values[:, 0] + fraction * (values[:, 1] - values[:, 0])

    low = percentile(_NORMALISE_PERCENTILE)
    high = percentile(100 - _NORMALISE_PERCENTILE)
    scale = torch.clamp(high - low, min=_NORMALISE_EPSILON)
    image = pixels.float()
    return (image - low.reshape(b, c, 1, 1)) / scale.reshape(b, c, 1, 1)


def infer_batch(
    predictor: Any,
    windows: Sequence[npt.NDArray[np.uint8]],
    target: Target,
    clock: StageClock | None = None,
    pad_to: int = 0,
) -> list[npt.NDArray[np.int32]]:
    """Instance labels (h, w) for RGB windows of one size, already at the model's pixel size.

    `pad_to`: a shorter batch is filled up with copies of its last window (their labels dropped),
    so the model always sees one input shape; TorchScript re-optimises its graph for each new
    shape, which costs a GPU more than the padding.
    """
    clock = clock or StageClock()
    count = len(windows)
    windows = [*windows, *[windows[-1]] * (pad_to - count)]
    device = torch.device(predictor.inference_device)
    # This thread's stream only: other model threads' kernels keep running.
    synchronise = torch.cuda.current_stream(device).synchronize if device.type == "cuda" else (lambda: None)
    started = time.perf_counter()
    pixels = torch.from_numpy(np.stack(windows)).to(device).permute(0, 3, 1, 2)
    synchronise()
    copied_in = time.perf_counter()
    with torch.inference_mode(), warnings.catch_warnings():
        # InstanSeg always enters CUDA autocast and its model uses sparse CSR tensors; on CPU both
        # only warn that they do nothing special. Harmless, and noise in every worker's log.
        warnings.filterwarnings("ignore", message=".*autocast.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support.*", category=UserWarning)
        # What InstanSeg's eval_small_image does for one image (it takes no batch): the model
        # under CUDA autocast, told which outputs to make. The windows are already on the model's
        # pixel size, so nothing is rescaled.
        with torch.amp.autocast("cuda"):
            labels = predictor.instanseg(normalise_percentiles(pixels), target_segmentation=_outputs(predictor, target))
        channel = 1 if target == "cells" and labels.shape[1] > 1 else 0
        labels = labels[:, channel]
        synchronise()
        inferred = time.perf_counter()
        host = labels.to("cpu", torch.int32).numpy()
    clock.add("transfer", (copied_in - started) + (time.perf_counter() - inferred))
    clock.add("forward", inferred - copied_in)
    return list(host[:count])


def _outputs(predictor: Any, target: Target) -> torch.Tensor:
    """InstanSeg's `target_segmentation`: which of (nuclei, cells) a two-output model computes."""
    if not predictor.instanseg.cells_and_nuclei:
        return torch.tensor([1, 1])
    return torch.tensor([1, 0] if target == "nuclei" else [0, 1])


def infer_labels(predictor: Any, rgb: npt.NDArray[np.uint8], target: Target) -> npt.NDArray[np.int32]:
    """Instance labels (h, w) for one RGB tile already at the model's pixel size."""
    return infer_batch(predictor, [rgb], target)[0]


_thread_streams = threading.local()


def _stream_of_this_thread(device: str) -> contextlib.AbstractContextManager[Any]:
    """On CUDA, a stream of this thread's own, so two model threads' kernels can overlap."""
    if torch.device(device).type != "cuda":
        return contextlib.nullcontext()
    if getattr(_thread_streams, "device", None) != device:
        _thread_streams.stream, _thread_streams.device = torch.cuda.Stream(device=device), device
    return torch.cuda.stream(_thread_streams.stream)


def segment_tiles_local(spec: SegmentSpec, tiles: Sequence[Tile], device: str | None = None) -> SegmentedBatch:
    """Read, segment and trim each tile, the three stages overlapped; the plain function under the Ray task."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    started = time.perf_counter()
    predictor = load_model(spec.model_path, device)
    slide = _open_slide_cached(str(spec.slide.path))
    clock = StageClock()
    kind = torch.device(device).type
    per_call = spec.forward_batch_tiles or FORWARD_BATCH_TILES.get(kind, 1)
    streams = spec.forward_streams or FORWARD_STREAMS.get(kind, 1)
    # One grid's windows all have one size (tiling.py slides them inside the slide), so they stack.
    groups = batches(list(tiles), per_call)
    with _lock:
        readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="tile-reader")
        models = ThreadPoolExecutor(streams, thread_name_prefix="tile-model")
        post = ThreadPoolExecutor(1, thread_name_prefix="tile-post")
        try:

            def read(group: list[Tile]) -> list[Future[npt.NDArray[np.uint8]]]:
                return [
                    readers.submit(
                        clock.timed, "decode", read_window_at_mpp, slide, spec.slide, t.window, spec.grid.working_mpp
                    )
                    for t in group
                ]

            def forward(reads: list[Future[npt.NDArray[np.uint8]]], group: list[Tile]) -> list[Future[TileResult]]:
                windows = [future.result() for future in reads]
                with _stream_of_this_thread(device):
                    # On a GPU a short last batch is padded: the model then sees a single shape.
                    labels = infer_batch(
                        predictor, windows, spec.target, clock, pad_to=per_call if kind == "cuda" else 0
                    )
                return [
                    post.submit(clock.timed, "postprocess", keep_core_objects, tile_labels, tile, spec.grid)
                    for tile_labels, tile in zip(labels, group, strict=True)
                ]

            # Decoding runs `streams` batches ahead of the model; waiting for batch n - streams before
            # queueing more bounds what sits decoded in memory to about 2 × streams batches.
            reads = [read(group) for group in groups[:streams]]
            forwards: list[Future[list[Future[TileResult]]]] = []
            for index, group in enumerate(groups):
                if index + streams < len(groups):
                    reads.append(read(groups[index + streams]))
                forwards.append(models.submit(forward, reads[index], group))
                if index >= streams:
                    forwards[index - streams].result()
            results = [kept.result() for labelled in forwards for kept in labelled.result()]
        finally:
            # On a cancel or an error, work not yet started is dropped; what runs ends within a batch.
            for pool in (readers, models, post):
                pool.shutdown(wait=True, cancel_futures=True)
    stage_s = dict(clock.seconds)
    stage_s["wall"] = time.perf_counter() - started
    return SegmentedBatch(results, stage_s, kind, per_call, streams)
