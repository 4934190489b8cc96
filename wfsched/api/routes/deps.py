"""The replica's Service and the dependencies the routes share.

Serve runs a pickled copy of the FastAPI app in each replica, so the Service is held here, in a
module both the replica's constructor and the routes import, rather than on `app.state`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from wfsched.api.service import Service

_service: Service | None = None


def install(service: Service) -> None:
    global _service
    _service = service


def service() -> Service:
    if _service is None:
        raise RuntimeError("no Service installed: the app runs outside its Serve deployment")
    return _service


async def _service_dependency() -> Service:
    """`service()` for FastAPI: a plain `def` dependency would cost every request a hop to a
    worker thread and back (FastAPI runs those in a thread pool)."""
    return service()


def max_body_bytes() -> int:
    return service().settings.max_body_bytes


ServiceDep = Annotated[Service, Depends(_service_dependency)]
