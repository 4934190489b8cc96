"""Validation and planning of workflow DAGs: pure functions."""
