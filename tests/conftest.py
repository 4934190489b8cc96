"""Shared by every test folder: the environment Ray needs here, synthetic slides, a PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.postgres import PostgresServer, running_postgres
from tests.support.slides import tissue_image, write_slide

# Ray must not phone home from tests, and must not grab every core of a 2-core machine's threads.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture
def make_slide(tmp_path: Path) -> Callable[..., Path]:
    """Write a synthetic slide: make_slide(name, height_px=, width_px=, blobs=, mpp=, levels=)."""

    def make(
        name: str = "slide.tif",
        height_px: int = 1024,
        width_px: int = 1536,
        blobs: list[tuple[int, int, int]] | None = None,
        mpp: float | None = 0.5,
        levels: int = 3,
    ) -> Path:
        image = tissue_image(height_px, width_px, blobs=blobs)
        return write_slide(tmp_path / name, image, mpp=mpp, levels=levels)

    return make


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the session, started on first use; `new_database()` per test."""
    with running_postgres() as server:
        yield server
