"""Schemathesis against the live service's own /openapi.json: no 500 and no answer off the schema.

Two users: every request is alice's; where a request names one of alice's workflows and she gets
a 2xx, the same request as bob must answer 404, exactly as for a workflow that does not exist.
Each operation is fuzzed with data that fits the schema and data that does not.

(Schemathesis's own pytest loader does not run on pytest 9 yet, so each operation's Hypothesis
strategy is driven here directly; the checks are Schemathesis's.)
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.e2e.conftest import base_url
from tests.support.service import Api, job_spec
from wfsched.api.app import create_app
from wfsched.config import Settings

ALICE, BOB = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
# The user stream never ends by design (only its client does); its inputs are tried in test_hostile.
ENDLESS_PATHS = {"/api/events"}
# Every operation the app declares, read from the app itself so that collection needs no service.
OPERATIONS = sorted(
    (method.upper(), path)
    for path, methods in create_app().openapi()["paths"].items()
    for method in methods
    if path not in ENDLESS_PATHS
)


@pytest.fixture(scope="module")
def alices_workflow(service_settings: Settings) -> str:
    api = Api(base_url(service_settings), ALICE)
    workflow_id = str(api.submit([job_spec("a", service_settings.data_roots[0])])["workflow_id"])
    api.wait(workflow_id)
    return workflow_id


@pytest.fixture(scope="module")
def live_schema(service_settings: Settings) -> Any:
    url = base_url(service_settings)
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    schema.config.update(base_url=url)
    return schema


def test_the_live_schema_is_the_apps(live_schema: Any) -> None:
    live = {(method.upper(), path) for path, methods in live_schema.raw_schema["paths"].items() for method in methods}
    assert live - ENDLESS_PATHS_OPS(live) == set(OPERATIONS)


def ENDLESS_PATHS_OPS(operations: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(method, path) for method, path in operations if path in ENDLESS_PATHS}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_server_error_and_no_answer_off_the_schema(
    live_schema: Any, alices_workflow: str, method: str, path: str, mode: GenerationMode
) -> None:
    operation = live_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def fuzz(case: Any) -> None:
        # Half the cases name a real workflow of alice's, so the checks reach past "not found".
        if (case.path_parameters or {}).get("workflow_id") is not None and hash(str(case.path_parameters)) % 2:
            case.path_parameters["workflow_id"] = alices_workflow
            if "job_id" in case.path_parameters:
                case.path_parameters["job_id"] = "a"
        response = case.call_and_validate(
            headers={"X-User-ID": ALICE},
            timeout=30,
            # Data valid by the schema is still refused on purpose where it names a slide outside
            # the data roots, an unknown job type or a cycle. Every other check stays on.
            excluded_checks=[positive_data_acceptance],
        )
        if 200 <= response.status_code < 300 and "{workflow_id}" in case.path:
            as_bob = case.call(headers={"X-User-ID": BOB}, timeout=30)
            assert as_bob.status_code == 404, f"bob got {as_bob.status_code} for alice's {case.method} {case.path}"

    try:
        fuzz()
    except Unsatisfiable:
        if mode == GenerationMode.POSITIVE:
            raise
        pytest.skip(f"{method} {path} accepts every value of its parameters' types: no negative data exists")
