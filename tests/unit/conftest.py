"""Unit tests never start Ray: the logic under test lives in plain classes (README, "Developing")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import ray


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a unit test started Ray: move it to tests/e2e, or test the plain class instead")

    monkeypatch.setattr(ray, "init", refuse)
    yield
