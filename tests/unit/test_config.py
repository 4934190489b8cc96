from __future__ import annotations

from pathlib import Path

import pytest

from wfsched.config import Settings


def test_env_then_overrides() -> None:
    env = {
        "WFSCHED_PORT": "9000",
        "WFSCHED_DATA_ROOTS": "/a:/b",
        "WFSCHED_JOB_MODULES": "x.y, z",
        "WFSCHED_MAX_ACTIVE_USERS": "5",
    }
    settings = Settings.from_env(env, port=9100, db="~/x.db")
    assert settings.port == 9100
    assert settings.data_roots == (Path("/a"), Path("/b"))
    assert settings.job_modules == ("x.y", "z")
    assert settings.max_active_users == 5
    assert settings.db == Path("~/x.db").expanduser()


def test_bad_values_are_refused_with_the_name() -> None:
    with pytest.raises(ValueError, match="max_active_users"):
        Settings.from_env({"WFSCHED_MAX_ACTIVE_USERS": "0"})
    with pytest.raises(ValueError):
        Settings.from_env({"WFSCHED_PORT": "eighty"})
