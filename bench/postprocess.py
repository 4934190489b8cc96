"""Post-processing benchmark: milliseconds per tile to keep a tile's objects, today's against the old.

The real model segments `--tiles` tissue tiles of the sample slide once (512 px, the job's default
grid); then `keep_core_objects` (one pass per tile: OpenCV moments and Douglas–Peucker on each
object's box) and the per-object implementation it replaced (tests/support/stitch_reference.py)
each process those label windows `--repeat` times, one after the other, nothing else running.
Prints the median milliseconds per tile of each beside issue 8's target (≤ 10 ms on a 2-core CPU),
and the largest outline difference between the two.

    python bench/postprocess.py [--tiles 12] [--repeat 5] [--device cpu]

A benchmark, not a test: it prints figures and asserts nothing about them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pipeline import MODEL, cached_assets
from tests.support.stitch_reference import hausdorff_px, reference_keep_core_objects
from wfsched.imaging.pipeline import plan_segmentation
from wfsched.imaging.segment import infer_labels, load_model
from wfsched.imaging.slide import inspect_slide, open_slide, read_window_at_mpp
from wfsched.imaging.stitch import keep_core_objects
from wfsched.imaging.tissue import TissueOptions, tissue_mask_of

TARGET_MS_PER_TILE = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiles", type=int, default=12, help="tissue tiles to segment (spread over the slide)")
    parser.add_argument("--repeat", type=int, default=5, help="passes over the tiles per implementation")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the model runs")
    args = parser.parse_args()

    slide_path, model_path = cached_assets()
    info = inspect_slide(slide_path)
    tissue = tissue_mask_of(open_slide(slide_path), info, TissueOptions())
    plan = plan_segmentation(info, model_path, tissue, tile_px=512, halo_px=64, target="nuclei")
    step = max(1, len(plan.tiles) // args.tiles)
    tiles = plan.tiles[::step][: args.tiles]
    print(f"{MODEL} on {len(tiles)} of {len(plan.tiles)} tissue tiles of {slide_path.name} ({args.device}) ...")
    predictor, slide = load_model(str(model_path), args.device), open_slide(slide_path)
    grid = plan.spec.grid
    labels = [
        infer_labels(predictor, read_window_at_mpp(slide, info, t.window, grid.working_mpp), "nuclei") for t in tiles
    ]

    timings: dict[str, list[float]] = {}
    for name, keep in (("vectorised (now)", keep_core_objects), ("per object (before)", reference_keep_core_objects)):
        passes = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            for tile, window in zip(tiles, labels, strict=True):
                keep(window, tile, grid)
            passes.append((time.perf_counter() - started) / len(tiles) * 1000)
        timings[name] = passes

    objects, worst_px = 0, 0.0
    for tile, window in zip(tiles, labels, strict=True):
        ours, before = keep_core_objects(window, tile, grid), reference_keep_core_objects(window, tile, grid)
        objects += len(ours.objects)
        for mine, theirs in zip(ours.objects, before.objects, strict=True):
            worst_px = max(worst_px, hausdorff_px(mine.outline, theirs.outline))
    print(
        f"objects kept: {objects} ({objects / len(tiles):.0f} per tile); largest outline difference {worst_px:.3f} px"
    )
    for name, passes in timings.items():
        median = statistics.median(passes)
        target = f"  (target ≤ {TARGET_MS_PER_TILE:.0f} ms)" if name.startswith("vectorised") else ""
        print(
            f"{name:<21} {median:7.2f} ms per tile, median of {len(passes)} passes "
            f"{[round(p, 2) for p in passes]}{target}"
        )
    ratio = statistics.median(timings["per object (before)"]) / statistics.median(timings["vectorised (now)"])
    print(f"speed-up: {ratio:.1f}×")


if __name__ == "__main__":
    main()
