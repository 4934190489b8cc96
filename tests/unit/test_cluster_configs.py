"""cluster.yaml (AWS) and cluster-onprem.yaml (listed hosts) as `ray up` reads them.

`ray up` prepares a config (Ray's defaults for the provider filled in, an on-premises host list
turned into a node type) and validates it against Ray's schema before it reaches a cloud or a
host; these tests run those same two steps, Ray's own code, on both files. Then what wfsched
needs of every node, which no schema knows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from wfsched.observe import logs

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {"aws": ROOT / "cluster.yaml", "onprem": ROOT / "cluster-onprem.yaml"}


def loaded(name: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(CONFIGS[name].read_text())
    return config


def prepared(config: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` holds after its preparation and validation (ray.autoscaler, `_bootstrap_config`)."""
    ready: dict[str, Any] = prepare_config(config)
    validate_config(ready)
    return ready


@pytest.mark.parametrize("name", CONFIGS)
def test_ray_up_accepts_it(name: str) -> None:
    config = prepared(loaded(name))
    assert config["head_node_type"] in config["available_node_types"]


@pytest.mark.parametrize("name", CONFIGS)
def test_ray_refuses_it_with_a_misspelt_field(name: str) -> None:
    # The check has teeth: Ray's schema takes no field it does not know.
    config = loaded(name)
    config["worker_start_ray_command"] = config.pop("worker_start_ray_commands")
    with pytest.raises(jsonschema.ValidationError, match="worker_start_ray_command"):
        prepared(config)


@pytest.mark.parametrize("name", CONFIGS)
def test_every_node_gets_wfsched_its_models_and_the_proxy_check(name: str) -> None:
    config = prepared(loaded(name))
    assert "/opt/wfsched" in config["file_mounts"]
    assert any("pip install" in command and "/opt/wfsched" in command for command in config["setup_commands"])
    assert any(command.endswith("wfsched fetch") for command in config["setup_commands"])
    for commands in (config["head_start_ray_commands"], config["worker_start_ray_commands"]):
        (start,) = [command for command in commands if "ray start" in command]
        assert f"{logs.PROXY_CALLBACK_ENV}={logs.PROXY_CALLBACK}" in start
        assert "RAY_USAGE_STATS_ENABLED=0" in start


def test_onprem_keeps_every_listed_host_and_no_gpu_on_the_head() -> None:
    config = prepared(loaded("onprem"))
    provider = config["provider"]
    workers = provider["worker_ips"]
    assert workers and len(set(workers)) == len(workers) and provider["head_ip"] not in workers
    worker_type = config["available_node_types"][config["head_node_type"]]
    assert worker_type["min_workers"] == worker_type["max_workers"] == len(workers)
    (head_start,) = [command for command in config["head_start_ray_commands"] if "ray start" in command]
    assert "--num-gpus=0" in head_start


def test_aws_head_is_its_own_node_type_and_workers_scale() -> None:
    config = prepared(loaded("aws"))
    head = config["available_node_types"][config["head_node_type"]]
    workers = [node for name, node in config["available_node_types"].items() if name != config["head_node_type"]]
    assert head["max_workers"] == 0
    assert workers and all(1 <= node["min_workers"] <= node["max_workers"] for node in workers)
    assert config["max_workers"] >= sum(node["min_workers"] for node in workers)
