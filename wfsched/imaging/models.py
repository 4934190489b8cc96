"""Which InstanSeg models a job may name, and where they are: the model cache and the data roots.

The cache is filled by `wfsched fetch` (wfsched/cli/fetch.py); running jobs only look models up.
Cache layout, under `cache_dir`:

    models/<name>/<version>/instanseg.pt   the layout instanseg-torch loads offline through
    models/<name>/<version>/rdf.yaml       INSTANSEG_BIOIMAGEIO_PATH=<cache_dir>/models
    slides/cmu_small_region.svs            the sample slide (wfsched/cli/fetch.py's)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from wfsched.exceptions import ModelNotFoundError

# Known model names and the version fetched for each; the newest released with InstanSeg 0.1.x.
KNOWN_MODELS: dict[str, str] = {
    "brightfield_nuclei": "0.1.1",
    "fluorescence_nuclei_and_cells": "0.1.1",
}

FETCH_HINT = "run `wfsched fetch` to download the released models into the cache"


def model_path(cache_dir: Path, name: str) -> Path:
    """Where a known model's TorchScript file lives in the cache (whether or not it is there)."""
    return Path(cache_dir) / "models" / name / KNOWN_MODELS[name] / "instanseg.pt"


def resolve_model(model: str, cache_dir: Path, data_roots: Iterable[Path] = ()) -> Path:
    """A model name known to wfsched, `<name>/<version>` in the cache, or a local `.pt` file → its path.

    A `.pt` file must lie in the model cache or a data root: loading TorchScript runs code, so a
    user must not be able to point the service at any file on its machines. Raises
    ModelNotFoundError, saying how to fetch it, when the file is not on this machine.
    """
    models_dir = (Path(cache_dir) / "models").resolve()
    if model in KNOWN_MODELS:
        path = model_path(cache_dir, model)
        if not path.is_file():
            raise ModelNotFoundError(f"model {model!r} is not in the cache {cache_dir}: {FETCH_HINT}")
        return path
    if model.endswith(".pt"):
        path = Path(model).expanduser().resolve()
        allowed = [models_dir, *(Path(root).expanduser().resolve() for root in data_roots)]
        if not any(path.is_relative_to(root) for root in allowed):
            raise ModelNotFoundError(
                f"model file {model!r} is outside the model cache and the data roots; put it in one of them"
            )
        if not path.is_file():
            raise ModelNotFoundError(f"model file {model!r} does not exist")
        return path
    cached = (models_dir / model / "instanseg.pt").resolve()
    if "/" in model and cached.is_relative_to(models_dir) and cached.is_file():
        return cached
    known = ", ".join(sorted(KNOWN_MODELS))
    raise ModelNotFoundError(
        f"unknown model {model!r}: use one of {known}, `<name>/<version>` under {cache_dir / 'models'}, "
        f"or a path to a TorchScript .pt file; {FETCH_HINT}"
    )
