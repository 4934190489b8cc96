"""Shared by every test folder: the environment Ray needs here, and the test folders' markers."""

from __future__ import annotations

import os

# Ray must not phone home from tests, and must not grab every core of a 2-core machine's threads.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
