"""The `wfsched` command's wiring, run through its entry point: flags, variables, exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.support.postgres import PostgresServer
from wfsched.api import server
from wfsched.cli import commands
from wfsched.cli.client import ApiError
from wfsched.cli.main import main
from wfsched.config import Settings
from wfsched.models.state import WorkflowPage, WorkflowRecord


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment without the shell's `WFSCHED_*` variables."""
    for name in [*(f"WFSCHED_{field.upper()}" for field in Settings.model_fields), "WFSCHED_URL", "WFSCHED_USER"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("WFSCHED_API_KEY", raising=False)
    return monkeypatch


def run(*argv: str) -> int:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    return int(exited.value.code or 0)


def test_serve_flags_win_over_variables(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    served: list[Settings] = []
    env.setattr(server, "serve_until_interrupted", lambda settings, restart_control: served.append(settings) or 0)
    env.setenv("WFSCHED_PORT", "9000")
    env.setenv("WFSCHED_MAX_ACTIVE_USERS", "7")
    env.setenv("WFSCHED_DATA_ROOTS", "/from/env")
    assert run("serve", "--port", "9100", "--data-root", str(tmp_path / "a"), "--data-root", str(tmp_path / "b")) == 0
    (settings,) = served
    assert settings.port == 9100 and settings.max_active_users == 7
    assert settings.data_roots == (tmp_path / "a", tmp_path / "b")


def test_db_is_a_file_or_a_postgresql_url_for_serve_and_keys(
    env: pytest.MonkeyPatch, postgres: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    served: list[Settings] = []
    env.setattr(server, "serve_until_interrupted", lambda settings, restart_control: served.append(settings) or 0)
    assert run("serve", "--db", "postgresql://wfsched@db.internal:5433/wfsched") == 0
    assert served[0].db == "postgresql://wfsched@db.internal:5433/wfsched"  # whole, not folded as a path
    url = postgres.new_database()
    assert run("keys", "create", "--user", "lab-a", "--db", url) == 0
    key = capsys.readouterr().out.strip()
    assert run("keys", "list", "--db", url) == 0
    assert f"{key[:13]}_…" in capsys.readouterr().out


def test_serve_restarts_the_control_actors_of_a_joined_cluster_only_when_asked(env: pytest.MonkeyPatch) -> None:
    asked: list[bool] = []
    env.setattr(server, "serve_until_interrupted", lambda settings, restart_control: asked.append(restart_control) or 0)
    assert run("serve", "--address", "auto") == 0
    assert run("serve", "--address", "auto", "--restart-control") == 0
    assert asked == [False, True]


def test_a_bad_variable_is_one_line_and_exit_2(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    env.setattr(server, "serve_until_interrupted", lambda *_, **__: pytest.fail("served with bad settings"))
    env.setenv("WFSCHED_PORT", "abc")
    assert run("serve") == 2
    err = capsys.readouterr().err
    assert err == "wfsched: WFSCHED_PORT must be a valid integer, unable to parse string as an integer, got 'abc'\n"


def test_usage_errors_exit_2(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert run() == 2  # no command: the help, as a usage error
    assert "serve" in capsys.readouterr().out
    assert run("serve", "--port", "0") == 2
    assert run("list", "--status", "lost", "--user", "a") == 2
    assert run("list") == 2  # nobody to ask as
    assert "--user" in capsys.readouterr().err
    assert run("--help") == 0 and run("list", "--help") == 0


class FakeClient:
    """Stands in for Client: records how it was made, answers list_workflows, or raises."""

    made: ClassVar[list[tuple[Any, ...]]] = []
    error: ClassVar[ApiError | None] = None

    def __init__(self, url: str, user: str | None, api_key: str | None = None) -> None:
        FakeClient.made.append((url, user, api_key))

    def list_workflows(self, status: Any, limit: int) -> WorkflowPage:
        if FakeClient.error:
            raise FakeClient.error
        record = WorkflowRecord(workflow_id="w1", user_id="u", name="scan", status="queued", created_at=1.0)
        return WorkflowPage(workflows=[record.model_copy(update={"queue_position": 2})], next_cursor=None)


def test_client_options_fall_back_to_variables(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    FakeClient.made, FakeClient.error = [], None
    env.setattr(commands, "Client", FakeClient)
    env.setenv("WFSCHED_URL", "http://service:9")
    env.setenv("WFSCHED_API_KEY", "wfsk_secret")
    assert run("list") == 0
    assert capsys.readouterr().out == "w1  queued     scan  (place 2)\n"
    assert run("list", "--url", "http://other:1", "--user", "lab-a") == 0
    assert FakeClient.made == [("http://service:9", None, "wfsk_secret"), ("http://other:1", "lab-a", "wfsk_secret")]


def test_an_api_error_is_one_line_and_exit_2(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    FakeClient.error = ApiError(401, {"error": "unauthorized", "detail": "unknown API key"})
    env.setattr(commands, "Client", FakeClient)
    assert run("list", "--user", "a") == 2
    assert capsys.readouterr().err == "wfsched: 401 unauthorized: unknown API key\n"
