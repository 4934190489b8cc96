"""Pydantic models of requests, responses, state and events. No I/O here."""
