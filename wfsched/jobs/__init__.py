"""Job types: a name, a pydantic params model and a runner."""
