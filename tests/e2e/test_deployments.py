"""The deployment files agree with wfsched and with each other (no Ray is started).

Alerts pass promtool's checks and their own unit tests, each firing and silent; the Prometheus
config is valid; every query of the Grafana dashboard and the alerts names only series that
exist (wfsched's catalogue, or a series Ray's own dashboards query) with labels they carry, and
parses in a real Prometheus; the compose file mounts files that exist, publishes the ports the
other files name and sets only real `WFSCHED_*` settings. Needs Debian's prometheus (promtool)
and docker-compose: scripts/install-prometheus.sh, run by `make test`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import ray
import yaml
from ray._private import ray_constants

from tests.support.dashboard import metric_names, panel_queries, panels
from tests.support.prometheus import PROMTOOL, PrometheusError, PrometheusServer, running_prometheus
from tests.support.service import ROOT, free_port
from wfsched.config import ENV_PREFIX, Settings
from wfsched.observe.metrics import CATALOGUE, Kind

DEPLOYMENTS = ROOT / "deployments"
PROMETHEUS_DIR = DEPLOYMENTS / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERT_TESTS = PROMETHEUS_DIR / "alerts.test.yml"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
DASHBOARD = DEPLOYMENTS / "grafana" / "wfsched.json"
PROVISIONING = DEPLOYMENTS / "grafana" / "provisioning"
COMPOSE = DEPLOYMENTS / "docker-compose.yml"
RAY_DASHBOARDS = Path(ray.__file__).parent / "dashboard" / "modules" / "metrics" / "dashboards"
# Labels Ray's agent adds to every application series, and Prometheus to every scraped one.
RAY_LABELS = {"WorkerId", "NodeAddress", "SessionName", "Component", "Version", "instance", "job"}
SEVERITIES = {"info", "warning", "critical"}


def wfsched_series() -> dict[str, tuple[str, ...]]:
    """Every name Prometheus scrapes for the catalogue, with the labels it carries."""
    names: dict[str, tuple[str, ...]] = {}
    for series in CATALOGUE:
        if series.kind == Kind.histogram:
            names[series.scraped_name + "_bucket"] = (*series.labels, "le")
            names[series.scraped_name + "_sum"] = series.labels
            names[series.scraped_name + "_count"] = series.labels
        else:
            names[series.scraped_name] = series.labels
    return names


def ray_series() -> set[str]:
    """The series Ray's own Grafana dashboards query (cluster, Serve, ...), as Ray ships them."""
    names = set()
    for path in RAY_DASHBOARDS.glob("*.py"):
        names.update(re.findall(r"\b(ray_(?!wfsched_)\w+)", path.read_text()))
    return names


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def every_expression() -> list[tuple[str, str]]:
    """(where, PromQL) for each panel target, alert and dashboard variable query."""
    found = [(f"panel {title!r}", expr) for title, expr in panel_queries(DASHBOARD)]
    found += [(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            inner = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["definition"])
            assert inner, f"variable {variable['name']}: {variable['definition']!r} is not label_values(series, label)"
            found.append((f"variable {variable['name']}", inner[1]))
    return found


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    if not PROMTOOL.exists():
        pytest.fail(f"{PROMTOOL} is missing: run scripts/install-prometheus.sh (as root; `make test` does)")
    return subprocess.run([str(PROMTOOL), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


# --- Alerts -------------------------------------------------------------------------------------


def test_alert_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", ALERTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass() -> None:
    result = promtool("test", "rules", ALERT_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_silent() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts never seen firing"
    assert names - silent == set(), "alerts never seen silent"


def test_every_alert_waits_has_a_severity_and_says_what_to_look_at() -> None:
    for rule in alert_rules():
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_panels_named_by_alerts_exist() -> None:
    titles = {panel["title"] for panel in panels(dashboard())}
    for rule in alert_rules():
        for quoted in re.findall(r'"([^"]+)"', rule["annotations"]["description"]):
            assert quoted in titles, f"{rule['alert']} points at a panel {quoted!r} the dashboard lacks"


# --- Prometheus config --------------------------------------------------------------------------


def test_prometheus_config_passes_promtool_check(tmp_path: Path) -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    ray_job = next(job for job in config["scrape_configs"] if job["job_name"] == "ray")
    sd_files = ray_job["file_sd_configs"][0]["files"]
    assert sd_files == [f"/tmp/ray/{ray_constants.PROMETHEUS_SERVICE_DISCOVERY_FILE}"]
    assert config["rule_files"] == [ALERTS.name]
    # A copy with the discovery file as Ray's head writes it, where promtool can read it.
    sd_file = tmp_path / ray_constants.PROMETHEUS_SERVICE_DISCOVERY_FILE
    sd_file.write_text(json.dumps([{"labels": {"job": "ray"}, "targets": ["10.0.0.2:8080", "10.0.0.3:8080"]}]))
    ray_job["file_sd_configs"][0]["files"] = [str(sd_file)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(ALERTS, tmp_path / ALERTS.name)
    result = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# --- The dashboard ------------------------------------------------------------------------------


def test_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 39
    ids = [panel["id"] for panel in board["panels"]] + [
        inner["id"] for panel in board["panels"] for inner in panel.get("panels", [])
    ]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["tenant"]["includeAll"] and variables["tenant"]["allValue"] == ".*"
    for panel in panels(board):
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel.get("targets") and all(target.get("expr") for target in panel["targets"]), panel["title"]


def test_dashboard_panels_do_not_overlap() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for y in range(grid["y"], grid["y"] + grid["h"]):
            for x in range(grid["x"], grid["x"] + grid["w"]):
                assert (x, y) not in taken, f"{panel['title']!r} overlaps {taken[(x, y)]!r}"
                taken[(x, y)] = panel["title"]


def test_panel_queries_have_every_variable_substituted() -> None:
    queries = panel_queries(DASHBOARD)
    assert len(queries) >= len(list(panels(dashboard())))
    for title, expr in queries:
        assert not re.search(r"\$\{?\w|\[\[\w", expr), (title, expr)


def test_every_series_named_exists() -> None:
    known = set(wfsched_series()) | ray_series()
    for where, expr in every_expression():
        names = metric_names(expr)
        assert names, f"{where}: no series in {expr!r}"
        assert names <= known, f"{where} names series that neither wfsched nor Ray exports: {names - known}"


def test_every_label_named_is_carried_by_its_series() -> None:
    """A matcher or a `by` on a label the series lacks selects nothing, silently."""
    series = wfsched_series()
    for where, expr in every_expression():
        ours = [name for name in metric_names(expr) if name in series]
        for name, matchers in re.findall(r"\b(ray_wfsched_\w+)\{([^}]*)\}", expr):
            for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers):
                assert label in series[name] or label in RAY_LABELS, f"{where}: {name} has no label {label!r}"
        if len(ours) == 1:
            for grouping in re.findall(r"\bby\s*\(([^)]*)\)", expr):
                for label in filter(None, (label.strip() for label in grouping.split(","))):
                    assert label in series[ours[0]] or label in RAY_LABELS, f"{where}: {ours[0]} has no {label!r}"


def test_dashboard_shows_every_series_of_the_catalogue() -> None:
    used = set().union(*(metric_names(expr) for _, expr in panel_queries(DASHBOARD)))
    for series in CATALOGUE:
        shown = {series.scraped_name, *(series.scraped_name + end for end in ("_bucket", "_sum", "_count"))}
        assert used & shown, f"no panel shows {series.name}"


# --- A real Prometheus (tests/support/prometheus.py) --------------------------------------------


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """Prometheus scraping its own /metrics every second, with wfsched's alert rules loaded."""
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
    }
    with running_prometheus(yaml.safe_dump(config), [ALERTS], tmp_path_factory.mktemp("prometheus"), port) as server:
        yield server


def test_prometheus_helper_scrapes_and_queries(prometheus: PrometheusServer) -> None:
    up = prometheus.query_until('up{job="prometheus"}')
    assert up[0]["value"][1] == "1"
    assert prometheus.series('up{job="prometheus"}')[0]["job"] == "prometheus"
    assert prometheus.targets()[0]["health"] == "up"
    with pytest.raises(PrometheusError, match="parse error"):
        prometheus.query("sum(up")


def test_every_query_parses_in_prometheus(prometheus: PrometheusServer) -> None:
    for where, expr in every_expression():
        try:
            prometheus.query(expr)
        except PrometheusError as error:
            pytest.fail(f"{where}: {error}")


# --- Grafana provisioning and the compose file --------------------------------------------------


def service(name: str) -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"][name]
    return found


def published(name: str) -> dict[int, int]:
    """The service's published ports, container port → host port."""
    ports = {}
    for entry in service(name).get("ports", []):
        host, container = str(entry).rsplit(":", 1) if ":" in str(entry) else (entry, entry)
        ports[int(container)] = int(str(host).rsplit(":", 1)[-1])
    return ports


def mounts(name: str) -> dict[str, str]:
    """The service's mounts, target in the container → source (a volume name or a ./path)."""
    found = {}
    for entry in service(name).get("volumes", []):
        source, target = entry.split(":")[:2]
        found[target] = source
    return found


def environment(name: str) -> dict[str, str]:
    return {key: str(value) for key, value in service(name).get("environment", {}).items()}


def command(name: str) -> str:
    given = service(name)["command"]
    return given if isinstance(given, str) else " ".join(given)


def test_compose_mounts_exist_and_volumes_are_declared() -> None:
    declared = set(compose()["volumes"])
    for name in compose()["services"]:
        for target, source in mounts(name).items():
            if source.startswith((".", "/")):
                assert (DEPLOYMENTS / source).exists(), f"{name} mounts {source}, which is not in the repository"
            else:
                assert source in declared, f"{name} mounts volume {source}, which is not declared"
            assert PurePosixPath(target).is_absolute()
    for name in ("head", "gpu-worker"):
        build = service(name)["build"]
        assert (DEPLOYMENTS / build["context"] / build["dockerfile"]).is_file()


def test_compose_sets_only_real_settings() -> None:
    for name in ("head", "gpu-worker"):
        for key in environment(name):
            if key.startswith(ENV_PREFIX):
                assert key.removeprefix(ENV_PREFIX).lower() in Settings.model_fields, f"{name}: {key} is no setting"
    head = environment("head")
    # Head and workers must see slides and results at the same paths.
    for path in [*head["WFSCHED_DATA_ROOTS"].split(":"), head["WFSCHED_RESULTS_DIR"]]:
        assert mounts("head").get(path) == mounts("gpu-worker").get(path) is not None, path


def test_compose_ports_agree_with_the_settings_and_prometheus() -> None:
    head = environment("head")
    assert head["WFSCHED_HOST"] == "0.0.0.0"
    assert int(head["WFSCHED_PORT"]) in published("head")
    assert "--dashboard-host=0.0.0.0" in command("head") and 8265 in published("head")
    # Every Ray node's metrics agent on the same fixed port, the one the image exposes.
    for name in ("head", "gpu-worker"):
        assert "--metrics-export-port=8080" in command(name), name
        devices = service(name)["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"], name
    assert "8080" in (DEPLOYMENTS / "Dockerfile").read_text()
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    self_target = next(job for job in config["scrape_configs"] if job["job_name"] == "prometheus")
    assert self_target["static_configs"][0]["targets"] == [f"localhost:{9090}"]
    assert 9090 in published("prometheus")


def test_prometheus_service_reads_the_config_rules_and_discovery_file() -> None:
    prometheus = mounts("prometheus")
    config_path = next(arg for arg in service("prometheus")["command"] if arg.startswith("--config.file="))
    config_path = config_path.removeprefix("--config.file=")
    assert prometheus[config_path] == "./prometheus/prometheus.yml"
    # rule_files are relative to the config file.
    assert prometheus[str(PurePosixPath(config_path).parent / ALERTS.name)] == "./prometheus/alerts.yml"
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    ray_job = next(job for job in config["scrape_configs"] if job["job_name"] == "ray")
    sd_folder = str(PurePosixPath(ray_job["file_sd_configs"][0]["files"][0]).parent)
    # The head writes the file into its /tmp/ray; Prometheus reads the same volume at the same path.
    assert prometheus[sd_folder] == mounts("head")[sd_folder]


def test_grafana_provisioning_points_at_the_compose_services_and_mounts() -> None:
    datasource = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)", datasource["url"]).groups()  # type: ignore[union-attr]
    assert host in compose()["services"] and int(port) in published(host)
    scrape_interval = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["global"]["scrape_interval"]
    assert datasource["jsonData"]["timeInterval"] == scrape_interval
    grafana = mounts("grafana")
    assert grafana["/etc/grafana/provisioning"] == "./grafana/provisioning"
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "wfsched.yml").read_text())["providers"]
    ours = next(provider for provider in providers if provider["name"] == "wfsched")
    assert grafana[ours["options"]["path"] + "/" + DASHBOARD.name] == "./grafana/wfsched.json"
    ray_provider = next(provider for provider in providers if provider["name"] == "ray")
    assert ray_provider["options"]["path"].startswith("/tmp/ray/") and grafana["/tmp/ray"] == mounts("head")["/tmp/ray"]
    home = environment("grafana")["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert grafana[home] == "./grafana/wfsched.json"


def test_docker_compose_accepts_the_file() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed (scripts/install-prometheus.sh installs Debian's)")
    # `config` resolves and validates the file without a Docker daemon (none runs here).
    result = subprocess.run([tool, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
