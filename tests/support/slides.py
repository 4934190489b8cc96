"""Synthetic whole-slide images for tests, written with tifffile the way scanners write them:
tiled, compressed, with a pyramid in SubIFDs, with or without a pixel size.

`WFSCHED_TEST_SLIDE` may name a real slide to use instead of the fetched sample in slow tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import tifffile

RGB = npt.NDArray[np.uint8]

# Glass in brightfield scans is near white, not pure white.
GLASS_RGB = (242, 242, 240)
TISSUE_RGB = (214, 140, 190)
NUCLEUS_RGB = (80, 50, 130)


def tissue_image(
    height_px: int,
    width_px: int,
    blobs: list[tuple[int, int, int]] | None = None,
    nucleus_every_px: int = 24,
    seed: int = 0,
) -> RGB:
    """White glass with pink discs of tissue (cy, cx, radius px) dotted with dark nuclei."""
    rng = np.random.default_rng(seed)
    image = np.empty((height_px, width_px, 3), np.uint8)
    image[:] = GLASS_RGB
    rows, cols = np.ogrid[:height_px, :width_px]
    blobs = blobs if blobs is not None else [(height_px // 2, width_px // 2, min(height_px, width_px) // 3)]
    tissue = np.zeros((height_px, width_px), bool)
    for cy, cx, radius in blobs:
        tissue |= (rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2
    image[tissue] = TISSUE_RGB
    # Nuclei are stamped from one small disc so that large slides stay fast to draw.
    radius_px = 4
    disc_rows, disc_cols = np.ogrid[-radius_px : radius_px + 1, -radius_px : radius_px + 1]
    disc = disc_rows**2 + disc_cols**2 <= radius_px**2
    for cy in range(nucleus_every_px // 2, height_px - radius_px, nucleus_every_px):
        for cx in range(nucleus_every_px // 2, width_px - radius_px, nucleus_every_px):
            if cy >= radius_px and cx >= radius_px and tissue[cy, cx]:
                box = (slice(cy - radius_px, cy + radius_px + 1), slice(cx - radius_px, cx + radius_px + 1))
                image[box][disc & tissue[box]] = NUCLEUS_RGB
    noise = rng.integers(-6, 7, size=image.shape)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _downsample_2x(image: RGB) -> RGB:
    h, w = (image.shape[0] // 2) * 2, (image.shape[1] // 2) * 2
    blocks = image[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).astype(np.float32)
    return np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)


def write_slide(
    path: Path,
    image: RGB,
    mpp: float | None = 0.5,
    levels: int = 3,
    tile_px: int = 256,
    compression: str = "zlib",
) -> Path:
    """Write `image` as a tiled, compressed, pyramidal TIFF; `mpp=None` leaves out the pixel size."""
    path = Path(path)
    options: dict[str, object] = {
        "tile": (tile_px, tile_px),
        "compression": compression,
        "photometric": "rgb",
    }
    if mpp is not None:
        # TIFF resolution is pixels per unit: 10_000 µm per cm.
        options.update(resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER")
    pyramid = [image]
    while len(pyramid) < levels and min(pyramid[-1].shape[:2]) >= 2 * tile_px:
        pyramid.append(_downsample_2x(pyramid[-1]))
    with tifffile.TiffWriter(path) as tif:
        tif.write(pyramid[0], subifds=len(pyramid) - 1, **options)
        for level, data in enumerate(pyramid[1:], start=1):
            if mpp is not None:
                scaled = 1e4 / (mpp * 2**level)
                options.update(resolution=(scaled, scaled))
            tif.write(data, subfiletype=1, **options)
    return path


def write_truncated(source: Path, dest: Path, keep_fraction: float = 0.5) -> Path:
    """A copy of `source` cut short, as an interrupted transfer leaves it."""
    data = Path(source).read_bytes()
    Path(dest).write_bytes(data[: int(len(data) * keep_fraction)])
    return Path(dest)


def write_corrupt(source: Path, dest: Path, seed: int = 0) -> Path:
    """A copy of `source` whose image data (after the first 4 KiB of headers) is overwritten with noise."""
    data = bytearray(Path(source).read_bytes())
    rng = np.random.default_rng(seed)
    start = min(4096, len(data) // 4)
    data[start:] = rng.integers(0, 256, size=len(data) - start, dtype=np.uint8).tobytes()
    Path(dest).write_bytes(bytes(data))
    return Path(dest)


def crop_of_slide(source: Path, dest: Path, origin_px: tuple[int, int], size_px: tuple[int, int]) -> Path:
    """A crop of a real slide, written as a pyramidal TIFF with the source's pixel size."""
    import tiffslide

    with tiffslide.TiffSlide(source) as slide:
        mpp = float(slide.properties["tiffslide.mpp-x"])
        region = np.asarray(slide.read_region(origin_px, 0, size_px, as_array=True))[..., :3]
    return write_slide(dest, np.ascontiguousarray(region), mpp=mpp, levels=2, compression="jpeg")


# Dense epidermis of the sample slide (cmu_small_region.svs): a few hundred nuclei, seconds on a CPU.
SAMPLE_CROP_ORIGIN_PX, SAMPLE_CROP_SIZE_PX = (900, 1200), (768, 640)


def sample_crop(folder: Path, size_px: tuple[int, int] = SAMPLE_CROP_SIZE_PX) -> Path:
    """`folder/crop.tif`: a crop of the fetched sample slide through dense epidermis (folder made if missing)."""
    from wfsched.cli.fetch import fetch_assets
    from wfsched.config import Settings

    folder.mkdir(parents=True, exist_ok=True)
    sample = fetch_assets(Settings().cache_dir).sample_slide
    return crop_of_slide(sample, folder / "crop.tif", SAMPLE_CROP_ORIGIN_PX, size_px)
