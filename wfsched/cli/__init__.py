"""The `wfsched` command: its parser and commands, the HTTP client, the terminal progress display,
the demo and `fetch`. Only `wfsched/__main__.py` imports from here; the service never does."""
