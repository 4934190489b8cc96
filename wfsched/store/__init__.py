"""Where workflows, jobs and events persist: the RunStore protocol and its SQLite implementation."""
