from __future__ import annotations

import ipaddress
import pickle
from pathlib import Path

import pytest

from wfsched.config import AuthMode, BatchOrder, Settings
from wfsched.exceptions import SettingsError


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment, with every `WFSCHED_*` variable of the shell removed."""
    for name in Settings.model_fields:
        monkeypatch.delenv(f"WFSCHED_{name.upper()}", raising=False)
    return monkeypatch


def test_variables_are_read_by_name_and_split_by_their_separators(env: pytest.MonkeyPatch) -> None:
    env.setenv("WFSCHED_PORT", "9000")
    env.setenv("WFSCHED_DATA_ROOTS", "/a:~/b:")
    env.setenv("WFSCHED_JOB_MODULES", "x.y, z,")
    env.setenv("WFSCHED_MAX_ACTIVE_USERS", "5")
    env.setenv("WFSCHED_NUM_GPUS_PER_TASK", "0.5")
    env.setenv("WFSCHED_ADDRESS", "")  # empty is unset: start a local Ray
    settings = Settings.from_env()
    assert settings.port == 9000
    assert settings.data_roots == (Path("/a"), Path("~/b").expanduser())
    assert settings.job_modules == ("x.y", "z")
    assert settings.max_active_users == 5
    assert settings.num_gpus_per_task == 0.5
    assert settings.address is None


def test_overrides_win_over_variables_and_none_leaves_a_field_as_it_is(env: pytest.MonkeyPatch) -> None:
    env.setenv("WFSCHED_PORT", "9000")
    env.setenv("WFSCHED_HOST", "0.0.0.0")
    settings = Settings.from_env(port=9100, host=None, db="~/x.db", data_roots="/c:/d")
    assert (settings.port, settings.host) == (9100, "0.0.0.0")
    assert settings.db == Path("~/x.db").expanduser()
    assert settings.data_roots == (Path("/c"), Path("/d"))  # as `serve run` config args give them


def test_a_plain_settings_reads_no_variable(env: pytest.MonkeyPatch) -> None:
    env.setenv("WFSCHED_PORT", "9000")
    env.setenv("WFSCHED_AUTH_MODE", "api_key")
    assert Settings().port == 8000 and Settings().auth_mode == AuthMode.header
    assert Settings(port=9001).port == 9001


@pytest.mark.parametrize(
    ("name", "value", "sentence"),
    [
        (
            "WFSCHED_PORT",
            "abc",
            "WFSCHED_PORT must be a valid integer, unable to parse string as an integer, got 'abc'",
        ),
        ("WFSCHED_PORT", "70000", "WFSCHED_PORT must be less than or equal to 65535, got '70000'"),
        ("WFSCHED_MAX_ACTIVE_USERS", "0", "WFSCHED_MAX_ACTIVE_USERS must be greater than or equal to 1, got '0'"),
        ("WFSCHED_HEARTBEAT_S", "nan", "WFSCHED_HEARTBEAT_S must be a finite number, got 'nan'"),
        ("WFSCHED_CANCEL_GRACE_S", "-1", "WFSCHED_CANCEL_GRACE_S must be greater than or equal to 0, got '-1'"),
        (
            "WFSCHED_AUTH_MODE",
            "none",
            "WFSCHED_AUTH_MODE must be 'header', 'api_key' or 'trusted_proxy', got 'none'",
        ),
        (
            "WFSCHED_NUM_GPUS_PER_TASK",
            "-1",
            "WFSCHED_NUM_GPUS_PER_TASK: must be 'auto' or a number of GPUs of at least 0, got '-1'",
        ),
        (
            "WFSCHED_NUM_GPUS_PER_TASK",
            "one",
            "WFSCHED_NUM_GPUS_PER_TASK: must be 'auto' or a number of GPUs of at least 0, got 'one'",
        ),
        (
            "WFSCHED_TENANT_WEIGHTS",
            "lab=2,clinic",
            "WFSCHED_TENANT_WEIGHTS: 'clinic' is not tenant=weight, got 'lab=2,clinic'",
        ),
        ("WFSCHED_TENANT_WEIGHTS", "lab=0", "WFSCHED_TENANT_WEIGHTS must be greater than 0, got 'lab=0'"),
        ("WFSCHED_BATCH_ORDER", "random", "WFSCHED_BATCH_ORDER must be 'fair' or 'fifo', got 'random'"),
        (
            "WFSCHED_TRUSTED_PROXIES",
            "10.0.0.5,proxy.example",
            "WFSCHED_TRUSTED_PROXIES: 'proxy.example' does not appear to be an IPv4 or IPv6 network,"
            " got '10.0.0.5,proxy.example'",
        ),
    ],
)
def test_a_bad_variable_is_one_sentence_naming_it(
    env: pytest.MonkeyPatch, name: str, value: str, sentence: str
) -> None:
    env.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        Settings.from_env()
    assert str(refused.value) == sentence


def test_the_database_is_a_file_or_a_postgresql_url(env: pytest.MonkeyPatch) -> None:
    url = "postgresql://wfsched@db.internal:5433/wfsched?sslmode=require"
    env.setenv("WFSCHED_DB", url)
    assert Settings.from_env().db == url  # kept whole: a path would fold its `//`
    assert Settings.from_env(db="postgres://db.internal/wfsched").db == "postgres://db.internal/wfsched"
    assert Settings.from_env(db="~/runs.db").db == Path("~/runs.db").expanduser()
    assert pickle.loads(pickle.dumps(Settings(db=url))).db == url
    env.setenv("WFSCHED_DB", "mysql://db.internal/wfsched")
    with pytest.raises(SettingsError) as refused:
        Settings.from_env()
    assert str(refused.value) == (
        "WFSCHED_DB: must be a SQLite file path or a postgresql:// URL, not a mysql:// URL,"
        " got 'mysql://db.internal/wfsched'"
    )


def test_a_bad_override_names_the_field_not_a_variable(env: pytest.MonkeyPatch) -> None:
    env.setenv("WFSCHED_PORT", "abc")  # overridden, so not the one at fault
    with pytest.raises(SettingsError, match=r"^max_active_users must be greater than or equal to 1, got 0$"):
        Settings.from_env(port=8001, max_active_users=0)


def test_auth_mode_and_trusted_proxies(env: pytest.MonkeyPatch) -> None:
    env.setenv("WFSCHED_AUTH_MODE", "trusted_proxy")
    with pytest.raises(
        SettingsError, match=r"^auth_mode trusted_proxy needs trusted_proxies \(WFSCHED_TRUSTED_PROXIES\)$"
    ):
        Settings.from_env()
    env.setenv("WFSCHED_TRUSTED_PROXIES", "10.0.0.5, 192.168.1.7/24,::1")
    settings = Settings.from_env()
    assert settings.auth_mode == AuthMode.trusted_proxy
    # Host bits are allowed, as in an allow-list: 192.168.1.7/24 is 192.168.1.0/24.
    assert settings.trusted_proxies == tuple(map(ipaddress.ip_network, ["10.0.0.5/32", "192.168.1.0/24", "::1/128"]))


def test_trusted_proxy_mode_is_refused_behind_haproxy(env: pytest.MonkeyPatch) -> None:
    env.setenv("WFSCHED_AUTH_MODE", "trusted_proxy")
    env.setenv("WFSCHED_TRUSTED_PROXIES", "127.0.0.1")
    env.setenv("WFSCHED_INGRESS", "haproxy")
    with pytest.raises(SettingsError, match=r"^auth_mode trusted_proxy needs ingress serve: behind HAProxy "):
        Settings.from_env()
    env.setenv("WFSCHED_AUTH_MODE", "api_key")
    assert Settings.from_env().ingress == "haproxy"


def test_settings_are_frozen_hashable_and_pickle_without_reading_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("WFSCHED_TRUSTED_PROXIES", "10.0.0.0/8")
    settings = Settings.from_env(port=9200, data_roots=("/a",))
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1  # type: ignore[misc]
    env.setenv("WFSCHED_PORT", "9300")  # what an actor's process might have: unpickling reads nothing
    copy = pickle.loads(pickle.dumps(settings))
    assert copy == settings and copy.port == 9200 and hash(copy) == hash(settings)
    assert copy.stream_token_secret == settings.stream_token_secret
    assert "stream_token_secret" not in repr(settings)


@pytest.mark.parametrize(
    ("setting", "cluster_gpus", "gpus_per_task"),
    [("auto", 8.0, 1.0), ("auto", 0.5, 1.0), ("auto", 0.0, 0.0), (0.25, 8.0, 0.25), (0.0, 8.0, 0.0), (2.0, 0.0, 2.0)],
)
def test_gpus_per_task_auto_follows_the_cluster_and_an_explicit_value_wins(
    setting: float | str, cluster_gpus: float, gpus_per_task: float
) -> None:
    assert Settings(num_gpus_per_task=setting).gpus_per_task(cluster_gpus) == gpus_per_task


def test_gpus_per_task_defaults_to_auto(env: pytest.MonkeyPatch) -> None:
    assert Settings().num_gpus_per_task == Settings.from_env().num_gpus_per_task == "auto"
    env.setenv("WFSCHED_NUM_GPUS_PER_TASK", "auto")
    assert Settings.from_env().num_gpus_per_task == "auto"
    env.setenv("WFSCHED_NUM_GPUS_PER_TASK", "0")
    assert Settings.from_env().gpus_per_task(cluster_gpus=4.0) == 0.0  # CPUs on purpose, GPUs or not


def test_fair_order_and_tenant_weights(env: pytest.MonkeyPatch) -> None:
    assert Settings().batch_order == BatchOrder.fair and Settings().tenant_weights == ()
    env.setenv("WFSCHED_BATCH_ORDER", "fifo")
    env.setenv("WFSCHED_TENANT_WEIGHTS", "lab=2, clinic = 0.5,")
    settings = Settings.from_env()
    assert settings.batch_order == BatchOrder.fifo
    assert settings.tenant_weights == (("clinic", 0.5), ("lab", 2.0))
    assert Settings(tenant_weights={"lab": 3}).tenant_weights == (("lab", 3.0),)
    hash(settings)  # still hashable: one frozen object, passed to actors
