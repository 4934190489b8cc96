"""The HTTP API: a FastAPI app served by a Ray Serve deployment."""
