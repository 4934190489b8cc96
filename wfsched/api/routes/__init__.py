"""Route modules: workflows, jobs, progress, health."""
