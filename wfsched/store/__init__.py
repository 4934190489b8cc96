"""Where workflows, jobs, events and result files persist.

The RunStore protocol and its implementation (runs.py) on SQLite, the embedded default, or
PostgreSQL (database.py chooses); API keys; the paths of results and slides.
"""
