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


def test_auth_mode_and_trusted_proxies_are_read_and_checked() -> None:
    import ipaddress

    from wfsched.config import AuthMode

    assert Settings.from_env({}).auth_mode == AuthMode.header
    env = {"WFSCHED_AUTH_MODE": "trusted_proxy", "WFSCHED_TRUSTED_PROXIES": "10.0.0.5, 192.168.1.7/24,::1"}
    settings = Settings.from_env(env)
    assert settings.auth_mode == AuthMode.trusted_proxy
    assert settings.trusted_proxies == tuple(map(ipaddress.ip_network, ["10.0.0.5/32", "192.168.1.0/24", "::1/128"]))
    assert Settings.from_env({"WFSCHED_AUTH_MODE": "api_key"}).auth_mode == AuthMode.api_key
    with pytest.raises(ValueError, match="auth_mode must be one of header, api_key, trusted_proxy"):
        Settings.from_env({"WFSCHED_AUTH_MODE": "none"})
    with pytest.raises(ValueError, match="needs trusted_proxies"):
        Settings.from_env({"WFSCHED_AUTH_MODE": "trusted_proxy"})
    with pytest.raises(ValueError, match=r"'proxy\.example' is not an IP address"):
        Settings.from_env({"WFSCHED_TRUSTED_PROXIES": "10.0.0.5,proxy.example"})
