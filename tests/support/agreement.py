"""Agreement with InstanSeg's own whole-slide inference: the reference run and instance matching.

Used by the agreement test and by the pipeline benchmark, so both report the same figures.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

Labels = npt.NDArray[np.integer]


@dataclass(frozen=True)
class Agreement:
    reference_count: int
    our_count: int
    matched: int
    iou_threshold: float

    @property
    def count_difference(self) -> float:
        """|ours - reference| / reference."""
        return abs(self.our_count - self.reference_count) / max(1, self.reference_count)

    @property
    def matched_fraction(self) -> float:
        """Fraction of reference instances matched by one of ours at IoU >= the threshold."""
        return self.matched / max(1, self.reference_count)


def match_instances(reference: Labels, ours: Labels, iou_threshold: float = 0.5) -> Agreement:
    """Count reference instances that one of ours overlaps at IoU >= `iou_threshold`.

    With a threshold >= 0.5 a reference instance can match at most one of ours, so counting
    reference instances whose best IoU passes is a one-to-one matching.
    """
    if reference.shape != ours.shape:
        raise ValueError(f"label images differ in shape: {reference.shape} vs {ours.shape}")
    ref = reference.ravel().astype(np.int64)
    our = ours.ravel().astype(np.int64)
    ref_ids, ref_area = np.unique(ref[ref > 0], return_counts=True)
    our_ids, our_area = np.unique(our[our > 0], return_counts=True)
    both = (ref > 0) & (our > 0)
    pairs, overlap = np.unique(np.stack([ref[both], our[both]]), axis=1, return_counts=True)
    ref_index = np.searchsorted(ref_ids, pairs[0])
    our_index = np.searchsorted(our_ids, pairs[1])
    iou = overlap / (ref_area[ref_index] + our_area[our_index] - overlap)
    matched = np.unique(pairs[0][iou >= iou_threshold]).size
    return Agreement(int(ref_ids.size), int(our_ids.size), int(matched), iou_threshold)


def resize_labels(labels: Labels, shape: tuple[int, int]) -> Labels:
    """Nearest-neighbour resize of a label image (no new label values are invented)."""
    rows = np.minimum((np.arange(shape[0]) + 0.5) * labels.shape[0] / shape[0], labels.shape[0] - 1)
    cols = np.minimum((np.arange(shape[1]) + 0.5) * labels.shape[1] / shape[1], labels.shape[1] - 1)
    return np.asarray(labels[rows.astype(np.int64)[:, None], cols.astype(np.int64)[None, :]])


def run_reference(
    slide_path: Path,
    model_path: Path,
    workdir: Path,
    pixel_size_um: float | None = None,
    device: str = "cpu",
    use_otsu_threshold: bool = False,
) -> tuple[Labels, float]:
    """InstanSeg's `eval_whole_slide_image` with its defaults; returns its labels and seconds taken.

    `use_otsu_threshold` makes InstanSeg skip tiles its Otsu threshold calls glass, as wfsched does.

    It writes its zarr beside the slide, so the slide is linked into `workdir` first. Passing the
    model's own pixel size for a slide within 1 % of it makes InstanSeg skip its 513 → 512 px
    nearest-neighbour squeeze of every tile, so both pipelines see identical pixels.
    """
    import torch
    import zarr
    from instanseg import InstanSeg

    workdir.mkdir(parents=True, exist_ok=True)
    local = workdir / slide_path.name
    if not local.exists():
        try:
            os.symlink(slide_path.resolve(), local)
        except OSError:
            shutil.copy2(slide_path, local)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript deprecation; InstanSeg CPU and autocast notices
        module = torch.jit.load(str(model_path), map_location=device)
        predictor = InstanSeg(module, device=device, verbosity=0)
        started_s = time.perf_counter()
        predictor.eval_whole_slide_image(str(local), pixel_size=pixel_size_um, use_otsu_threshold=use_otsu_threshold)
    elapsed_s = time.perf_counter() - started_s
    output = workdir / f"{local.stem}{predictor.prediction_tag}.zarr"
    return np.asarray(zarr.open_array(str(output), mode="r")[0]), elapsed_s


def keep_in_mask(labels: Labels, mask: npt.NDArray[np.bool_]) -> Labels:
    """Only the instances whose centroid falls in `mask` (any resolution; scaled to the labels)."""
    from scipy import ndimage

    ids = np.unique(labels[labels > 0])
    if ids.size == 0:
        return labels
    centroids = np.array(ndimage.center_of_mass(labels > 0, labels, ids)).reshape(-1, 2)
    rows = np.clip((centroids[:, 0] * mask.shape[0] / labels.shape[0]).astype(np.int64), 0, mask.shape[0] - 1)
    cols = np.clip((centroids[:, 1] * mask.shape[1] / labels.shape[1]).astype(np.int64), 0, mask.shape[1] - 1)
    inside = ids[mask[rows, cols]]
    return np.where(np.isin(labels, inside), labels, 0)
