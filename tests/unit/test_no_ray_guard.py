"""The guard of tests/unit/conftest.py: a unit test that starts Ray fails, saying where it belongs."""

from __future__ import annotations

import pytest
import ray


def test_starting_ray_in_a_unit_test_fails() -> None:
    with pytest.raises(RuntimeError, match="unit test started Ray"):
        ray.init()
