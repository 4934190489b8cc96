"""The e2e tests share one service: Ray started once, the Serve app deployed once."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.service import Api, ray_init_options, test_settings, wait_healthy
from wfsched.api import server
from wfsched.config import Settings


@pytest.fixture(scope="session")
def service_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = test_settings(tmp_path_factory.mktemp("service"))
    server.start(settings, ray_init_options())
    wait_healthy(base_url(settings))
    yield settings
    server.stop()


def base_url(settings: Settings) -> str:
    return f"http://{settings.host}:{settings.port}"


@pytest.fixture
def data_dir(service_settings: Settings) -> Path:
    return service_settings.data_roots[0]


@pytest.fixture
def make_user(service_settings: Settings) -> Iterator[Callable[[str], Api]]:
    """Users unique to the test; their unfinished workflows are cancelled when it ends."""
    made: list[Api] = []

    def make(name: str) -> Api:
        api = Api(base_url(service_settings), f"{name}-{uuid.uuid4().hex[:8]}")
        made.append(api)
        return api

    yield make
    for api in made:
        for status in ("queued", "running"):
            page = api.request("GET", "/api/workflows", params={"status": status, "limit": 200}).json()
            for workflow in page["workflows"]:
                api.request("POST", f"/api/workflows/{workflow['workflow_id']}/cancel")
    for api in made:
        for workflow in api.request("GET", "/api/workflows", params={"limit": 200}).json()["workflows"]:
            api.wait(workflow["workflow_id"])
