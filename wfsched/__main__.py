"""`python -m wfsched`: the command line (wfsched/cli)."""

from __future__ import annotations

import sys

from wfsched.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
