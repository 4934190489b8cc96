"""Where workflows, jobs, events and result files persist.

The RunStore protocol and its SQLite implementation; API keys; the paths of results and slides.
"""
