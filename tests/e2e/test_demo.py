"""The demo's console, run against the test service with a small workflow: a few readable lines,
live bars and a summary; no per-request access lines, no HTTP client lines, no JSON log lines."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.service import job_spec
from wfsched.api import server
from wfsched.cli.demo import demo_console
from wfsched.config import Settings
from wfsched.observe import logs

# What the demo may print for two short jobs: where things are (5), the submission, the bars as
# they change (a header and a line per job each time), the summary (4): far fewer than a line per request.
MAX_LINES = 40
ACCESS_LINE = re.compile(r"\b(GET|POST) /\S* \d{3}\b")


@pytest.fixture
def quiet_console() -> Iterator[None]:
    """The console as `wfsched demo` sets it, put back afterwards."""
    names = ["", *logs.CHATTY_LOGGERS]
    levels = {name: logging.getLogger(name).level for name in names}
    handlers = logging.getLogger().handlers[:]
    logs.console("info")
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger().handlers[:] = handlers


@pytest.mark.usefixtures("quiet_console")
def test_the_demo_console_is_a_few_readable_lines(
    service_settings: Settings, data_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    workflow = {
        "name": "demo console",
        "jobs": [
            job_spec("tissue", data_dir, "branch-1", steps=4, duration_s=0.4),
            job_spec("cells", data_dir, "branch-1", ["tissue"], steps=4, duration_s=0.4),
        ],
    }
    user = f"demo-console-{data_dir.name}"
    code = demo_console(server.endpoints(service_settings), user, workflow, service_settings.results_dir)
    out, err = capfd.readouterr()
    lines = (out + err).splitlines()
    assert code == 0, out + err
    assert len(lines) < MAX_LINES, out + err
    assert not [line for line in lines if "HTTP Request:" in line or ACCESS_LINE.search(line)], out + err
    assert not [line for line in lines if line.lstrip().startswith("{")], out + err  # no JSON log lines
    for where in ("web page", "API docs", "metrics", "logs"):
        assert any(line.strip().startswith(where) for line in lines), (where, out)
    assert "100.0% succeeded 4/4" in out  # the CLI's bars, as lines when not on a terminal
    assert "workflow succeeded in" in out and f"results   {service_settings.results_dir / user}" in out
