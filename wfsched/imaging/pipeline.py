"""Whole-slide segmentation as plain functions: plan tiles, fan batches out, stitch, write outputs.

The fan-out takes a `SubmitBatch` callable, so the job runner passes one that starts Ray tasks
and unit tests and the Ray-less benchmark pass `run_in_process`; nothing here imports ray. It
takes a `SlotSource` too: the job runner's asks the tile-batch dispatcher for a slot before each
batch goes out (fair share across tenants, control/dispatcher.py); the default grants at once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from wfsched.config import CANCEL_GRACE_S
from wfsched.imaging.checkpoint import TileCheckpoints
from wfsched.imaging.outputs import DetectionWriter, LabelImageWriter, detection_feature
from wfsched.imaging.segment import STAGES, SegmentedBatch, SegmentSpec, Target, model_info
from wfsched.imaging.slide import SlideInfo, working_mpp
from wfsched.imaging.tiling import Tile, all_tiles, batches, make_grid, plan_tiles
from wfsched.imaging.tissue import TissueMask

log = logging.getLogger(__name__)

DETECTIONS_NAME = "detections.geojson"
LABELS_NAME = "labels.zarr"
CHECKPOINT_DIR = "tiles"

# How often the fan-out wakes to check for cancellation while batches run.
_POLL_INTERVAL_S = 0.25


@dataclass(frozen=True)
class Submitted:
    """A batch in flight: its result, how to ask it to stop, and how to make it stop."""

    future: Future[SegmentedBatch]
    cancel: Callable[[], None]
    force_cancel: Callable[[], None] = lambda: None


def stop_batches(batches: Sequence[Submitted], grace_s: float) -> None:
    """Cancel each batch; those still running after `grace_s` are force-cancelled.

    Returns once every batch has ended or been forced, so the slots they held are free (or being
    freed) when the job reports itself stopped.
    """
    for submitted in batches:
        submitted.cancel()
    _, running = wait([b.future for b in batches], timeout=grace_s)
    if running:
        log.warning("%d batch(es) still running %.1f s after cancel: force-cancelling", len(running), grace_s)
    for submitted in batches:
        if submitted.future in running:
            submitted.force_cancel()


SubmitBatch = Callable[[SegmentSpec, list[Tile]], Submitted]


class SlotSource(Protocol):
    """Where a fan-out gets an accelerator slot for each batch before the batch goes out."""

    def acquire(self, cost: float) -> Future[int | None]:
        """A slot for a batch of `cost` tiles: the slot's id once granted, or None if the request
        was dropped (the holder's lease ran out while it stalled): ask again."""

    def release(self, slot: int) -> None:
        """The batch that held `slot` ended (finished, failed or was stopped)."""

    def keep_alive(self) -> None:
        """The fan-out is alive; called often, renews its lease now and then."""

    def close(self) -> None:
        """The fan-out ended: what it still asks for is withdrawn, what it holds given back."""


class GrantAtOnce:
    """A SlotSource with a slot for every batch at once: nothing shared (in-process runs, tests)."""

    def acquire(self, cost: float) -> Future[int | None]:
        granted: Future[int | None] = Future()
        granted.set_result(0)
        return granted

    def release(self, slot: int) -> None:
        pass

    def keep_alive(self) -> None:
        pass

    def close(self) -> None:
        pass


def _no_progress(done: int, total: int) -> None:
    pass


def _never_cancelled() -> None:
    pass


def _no_batch(batch: SegmentedBatch) -> None:
    pass


@dataclass(frozen=True)
class FanOut:
    """How a segmentation's batches go out, and what is told as they come back."""

    batch_size: int
    """Tiles per task."""
    max_in_flight: int
    """Tasks submitted and not yet finished, at most."""
    on_progress: Callable[[int, int], None] = _no_progress
    """Tiles done and in all, after each batch (and once at the start)."""
    check_cancelled: Callable[[], None] = _never_cancelled
    """Raises to stop; asked between polls."""
    cancel_grace_s: float = CANCEL_GRACE_S
    """How long batches in flight get to stop before they are forced."""
    on_batch: Callable[[SegmentedBatch], None] = _no_batch
    """Each finished batch, once its tiles are checkpointed."""
    slots: SlotSource = field(default_factory=GrantAtOnce)
    """A slot before each batch goes out, given back when it ends."""


@dataclass
class TaskTotals:
    """What the tasks of a job report, added up: seconds per stage, devices, how the model was fed."""

    stage_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys((*STAGES, "wall"), 0.0))
    devices: set[str] = field(default_factory=set)
    forward_batch_tiles: set[int] = field(default_factory=set)
    forward_streams: set[int] = field(default_factory=set)

    def add(self, batch: SegmentedBatch) -> None:
        for stage, seconds in batch.stage_s.items():
            self.stage_s[stage] = self.stage_s.get(stage, 0.0) + seconds
        self.devices.add(batch.device)
        self.forward_batch_tiles.add(batch.forward_batch_tiles)
        self.forward_streams.add(batch.forward_streams)

    def summary(self) -> dict[str, Any]:
        return {
            # Summed over tasks (and threads within one); stages overlap, so they add up to more
            # than the tasks' wall time. Tiles resumed from a checkpoint count nothing here.
            "stage_s": {stage: round(seconds, 3) for stage, seconds in self.stage_s.items()},
            "devices": sorted(self.devices),
            "forward_batch_tiles": sorted(self.forward_batch_tiles),
            "forward_streams": sorted(self.forward_streams),
        }


@dataclass(frozen=True)
class SegmentationPlan:
    spec: SegmentSpec
    tiles: list[Tile]
    total_tiles: int


def plan_segmentation(
    info: SlideInfo,
    model_path: Path,
    tissue: TissueMask | None,
    *,
    tile_px: int,
    halo_px: int,
    target: Target,
    forward_batch_tiles: int | None = None,
    forward_streams: int | None = None,
) -> SegmentationPlan:
    """Tiles at the model's pixel size over tissue only; the spec every batch carries."""
    model = model_info(str(model_path))
    grid = make_grid(
        (info.width_px, info.height_px), info.mpp, working_mpp(info, model.pixel_size_um), tile_px, halo_px
    )
    mask = None if tissue is None else tissue.mask
    tiles = plan_tiles(grid, mask, None if tissue is None else tissue.mask_mpp)
    spec = SegmentSpec(
        slide=info,
        grid=grid,
        model_path=str(model_path),
        target=target,
        forward_batch_tiles=forward_batch_tiles,
        forward_streams=forward_streams,
    )
    return SegmentationPlan(spec=spec, tiles=tiles, total_tiles=len(all_tiles(grid)))


def run_batches(
    spec: SegmentSpec, tiles: Sequence[Tile], submit: SubmitBatch, checkpoints: TileCheckpoints, fan_out: FanOut
) -> int:
    """Segment the tiles without a checkpoint, `max_in_flight` batches at a time; returns how many ran.

    Each batch waits for a slot from `fan_out.slots`, and gives it back when it ends, however it
    ends. `fan_out.on_batch` gets each finished batch once its tiles are checkpointed (totals, metrics).

    Every finished batch is checkpointed before progress is reported, so a crash loses at most the
    batches in flight. On any exception (cancellation included) the batches in flight are stopped:
    cancelled, and force-cancelled if they still run after `cancel_grace_s`; then every slot asked
    for or held is let go.
    """
    done_before = checkpoints.done_indices()
    todo = [tile for tile in tiles if tile.index not in done_before]
    total, done = len(tiles), len(tiles) - len(todo)
    fan_out.on_progress(done, total)
    fan = _Fan(deque(batches(todo, fan_out.batch_size)), fan_out.slots)
    try:
        while fan.busy:
            fan_out.check_cancelled()
            fan_out.slots.keep_alive()
            fan.ask(fan_out.max_in_flight)
            for batch in fan.step(spec, submit):
                for result in batch.results:
                    checkpoints.save(result)
                    done += 1
                fan_out.on_batch(batch)
                fan_out.on_progress(done, total)
    except BaseException:
        stop_batches(fan.in_flight, fan_out.cancel_grace_s)
        raise
    finally:
        fan_out.slots.close()
    return len(todo)


class _Fan:
    """run_batches' batches: waiting to be asked for, asked a slot for, and running with one."""

    def __init__(self, queue: deque[list[Tile]], slots: SlotSource) -> None:
        self.queue = queue
        self.slots = slots
        self.asked: dict[Future[int | None], list[Tile]] = {}
        self.running: dict[Future[SegmentedBatch], tuple[Submitted, int]] = {}

    @property
    def busy(self) -> bool:
        return bool(self.queue or self.asked or self.running)

    @property
    def in_flight(self) -> list[Submitted]:
        return [submitted for submitted, _ in self.running.values()]

    def ask(self, max_in_flight: int) -> None:
        """A slot for each batch that may go out now: at most `max_in_flight` asked or running."""
        while self.queue and len(self.asked) + len(self.running) < max_in_flight:
            tiles = self.queue.popleft()
            self.asked[self.slots.acquire(len(tiles))] = tiles

    def step(self, spec: SegmentSpec, submit: SubmitBatch) -> list[SegmentedBatch]:
        """Wait a poll for a slot or a batch: submit the batches granted one; the batches finished."""
        waiting: list[Future[Any]] = [*self.asked, *self.running]
        finished, _ = wait(waiting, timeout=_POLL_INTERVAL_S, return_when=FIRST_COMPLETED)
        ended: list[SegmentedBatch] = []
        for future in finished:
            if future in self.asked:
                tiles = self.asked.pop(future)
                slot = future.result()
                if slot is None:  # dropped, not granted: ask again first
                    self.queue.appendleft(tiles)
                    continue
                submitted = submit(spec, tiles)
                self.running[submitted.future] = (submitted, slot)
            else:
                _, slot = self.running.pop(future)
                self.slots.release(slot)
                ended.append(future.result())  # a failed batch raises here, its slot given back
        return ended


def assemble_outputs(plan: SegmentationPlan, checkpoints: TileCheckpoints, output_dir: Path) -> dict[str, Any]:
    """Stitch the checkpointed tiles in tile order into the GeoJSON and the label image."""
    class_name = "Cell" if plan.spec.target == "cells" else "Nucleus"
    next_id, seam_duplicates = 1, 0
    # Ids unique across jobs (QuPath merges imports by id), and the same on a rerun of this job.
    id_namespace = uuid.uuid5(uuid.NAMESPACE_URL, output_dir.resolve().as_uri())
    with (
        LabelImageWriter(output_dir / LABELS_NAME, plan.spec.grid, class_name) as labels,
        DetectionWriter(output_dir / DETECTIONS_NAME) as detections,
    ):
        for tile in plan.tiles:
            # Windows only move down from tile to tile: nothing above this one changes any more.
            labels.flush_above(tile.window[1])
            result = checkpoints.load(tile.index)
            kept = labels.paste(result, next_id)
            seam_duplicates += len(result.objects) - len(kept)
            for local_label in kept:
                detections.write(
                    detection_feature(
                        result.objects[local_label - 1], next_id, plan.spec.grid, class_name, id_namespace
                    )
                )
                next_id += 1
    return {"cell_count": next_id - 1, "seam_duplicates_dropped": seam_duplicates, "class_name": class_name}


def segment_slide(plan: SegmentationPlan, submit: SubmitBatch, output_dir: Path, fan_out: FanOut) -> dict[str, Any]:
    """Run a planned segmentation end to end; resumes from checkpoints under `output_dir`."""
    started_s = time.monotonic()
    checkpoints = TileCheckpoints(output_dir / CHECKPOINT_DIR, plan.spec.grid.fingerprint())
    totals = TaskTotals()
    ran = run_batches(
        plan.spec, plan.tiles, submit, checkpoints, replace(fan_out, on_batch=_both(totals.add, fan_out.on_batch))
    )
    segmented_s = time.monotonic()
    summary = assemble_outputs(plan, checkpoints, output_dir)
    # The outputs now hold everything the checkpoints did; keeping both would double the disk use.
    checkpoints.clear()
    grid = plan.spec.grid
    summary.update(
        {
            "tiles_total": plan.total_tiles,
            "tiles_segmented": len(plan.tiles),
            "tiles_skipped_background": plan.total_tiles - len(plan.tiles),
            "tiles_resumed_from_checkpoint": len(plan.tiles) - ran,
            "tile_px": grid.tile_px,
            "tiles_per_task": fan_out.batch_size,
            "halo_px": grid.halo_px,
            "working_pixel_size_um": grid.working_mpp,
            "level0_pixel_size_um": grid.level0_mpp,
            "label_scale_to_level0": grid.scale_to_level0,
            "segment_s": round(segmented_s - started_s, 3),
            "stitch_s": round(time.monotonic() - segmented_s, 3),
            **totals.summary(),
        }
    )
    return summary


def _both(
    first: Callable[[SegmentedBatch], None], then: Callable[[SegmentedBatch], None]
) -> Callable[[SegmentedBatch], None]:
    def both(batch: SegmentedBatch) -> None:
        first(batch)
        then(batch)

    return both


def run_in_process(spec: SegmentSpec, tiles: list[Tile]) -> Submitted:
    """A SubmitBatch that segments on the calling thread (tests, benchmarks, a Ray-less CLI)."""
    from wfsched.imaging.segment import segment_tiles_local

    future: Future[SegmentedBatch] = Future()
    try:
        future.set_result(segment_tiles_local(spec, tiles))
    except BaseException as error:  # the fan-out re-raises it from future.result()
        future.set_exception(error)
    return Submitted(future=future, cancel=lambda: None)
