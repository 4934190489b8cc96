"""Running the `wfsched` command in tests, as a user would."""

from __future__ import annotations

import subprocess
import sys

from tests.support.service import ROOT, Api


def wfsched(api: Api, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "wfsched", *args[:1], "--url", api.base_url, "--user", api.user, *args[1:]]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=180, cwd=ROOT)
