"""The e2e tests share one service: Ray started once, the Serve app deployed once, on SQLite.

A test that must hold on each engine asks for `service` with `indirect` parameters:

    @pytest.mark.parametrize("service", ["sqlite", "postgresql"], indirect=True)

"postgresql" is a second whole service, `wfsched serve` in a process of its own on a database of
the session's PostgreSQL server, started once per test module that asks for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import ray

from tests.support.postgres import PostgresServer
from tests.support.service import (
    Api,
    Service,
    free_port,
    kill_actor_process,
    ray_init_options,
    running_service,
    service_env,
    test_settings,
    wait_healthy,
)
from wfsched.api import server
from wfsched.config import Settings
from wfsched.control.actors import SCHEDULER_NAME


@pytest.fixture(scope="session")
def service_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = test_settings(tmp_path_factory.mktemp("service"))
    server.start(settings, ray_init_options())
    wait_healthy(base_url(settings))
    yield settings
    server.stop()


def base_url(settings: Settings) -> str:
    return f"http://{settings.host}:{settings.port}"


@pytest.fixture(scope="module")
def postgres_service(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    base = tmp_path_factory.mktemp("postgres-service")
    env = service_env(base, free_port(), postgres.new_database())
    with running_service(env, base / "service.log") as process:
        yield Service(
            f"http://127.0.0.1:{env['WFSCHED_PORT']}",
            base / "data",
            lambda: kill_actor_process(process.pid, "SchedulerActor"),
        )


@pytest.fixture
def service(request: pytest.FixtureRequest) -> Service:
    """The service a test talks to: the shared one (SQLite), or the PostgreSQL one when asked."""
    if getattr(request, "param", "sqlite") == "postgresql":
        on_postgres: Service = request.getfixturevalue("postgres_service")
        return on_postgres
    settings: Settings = request.getfixturevalue("service_settings")

    def kill_scheduler() -> None:
        ray.kill(ray.get_actor(SCHEDULER_NAME, namespace=settings.namespace), no_restart=False)

    return Service(base_url(settings), settings.data_roots[0], kill_scheduler)


@pytest.fixture
def data_dir(service: Service) -> Path:
    return service.data_dir


@pytest.fixture
def make_user(service: Service) -> Iterator[Callable[[str], Api]]:
    """Users unique to the test; their unfinished workflows are cancelled when it ends."""
    made: list[Api] = []

    def make(name: str) -> Api:
        api = Api(service.base_url, f"{name}-{uuid.uuid4().hex[:8]}")
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
