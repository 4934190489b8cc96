"""`python -m wfsched`: the command line (wfsched/cli)."""

from __future__ import annotations

from wfsched.cli.main import main

if __name__ == "__main__":
    main()
