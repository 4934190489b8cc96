"""What a start joined to a cluster compares with the settings wfsched's actors there run with."""

from __future__ import annotations

from wfsched.api.joined import changed_settings
from wfsched.config import Settings


def test_only_the_settings_the_control_actors_read_are_compared_and_each_is_named_with_both_values() -> None:
    running = Settings(max_active_users=3, results_dir="/srv/results", port=8000)
    # Another port, ingress and stream secret (random at every start) are this start's own.
    asked = Settings(max_active_users=5, results_dir="/srv/other", port=9000, ingress="haproxy")
    assert changed_settings(running, asked) == [
        "results_dir /srv/results (this start: /srv/other)",
        "max_active_users 3 (this start: 5)",
    ]
    assert changed_settings(running, running.model_copy(update={"port": 1234})) == []


def test_a_database_password_is_never_shown() -> None:
    running = Settings(db="postgresql://wfsched:old-secret@db/wfsched")
    asked = Settings(db="postgresql://wfsched:new-secret@db/wfsched")
    [changed] = changed_settings(running, asked)
    assert "secret" not in changed and changed.startswith("db postgresql://wfsched:****@db/wfsched")
    # The same URL but for its password: a difference, shown without either password.
    assert changed == "db postgresql://wfsched:****@db/wfsched (this start: postgresql://wfsched:****@db/wfsched)"
