"""`wfsched serve` joined to a Ray cluster that another team's Serve application shares: stopping
wfsched ends wfsched's app and nothing else of the cluster's Serve, and a start that asks for
another port than that Serve's is refused, naming it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from tests.support.cluster import local_cluster
from tests.support.service import ROOT, free_port, running_service, service_env

pytestmark = pytest.mark.slow

# Another team's application: a replica that needs no CPU of the one-CPU head, on its own route.
OTHER_APP = textwrap.dedent(
    """
    import sys
    import ray
    from ray import serve

    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Other:
        def __call__(self, request):
            return "other team's app"

    ray.init(address=sys.argv[1])
    serve.run(Other.bind(), name="other", route_prefix="/other")
    """
)


def test_stopping_wfsched_on_a_shared_cluster_leaves_the_other_serve_apps_running_on_their_port(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "service.log"
    with local_cluster() as cluster:
        env = {**service_env(tmp_path, port), "WFSCHED_ADDRESS": cluster.address}
        with running_service(env, log) as service:
            node_env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
            subprocess.run([sys.executable, "-c", OTHER_APP, cluster.address], env=node_env, check=True, timeout=180)
            assert requests.get(f"{url}/other", timeout=30).text == "other team's app"
            assert requests.get(f"{url}/healthz", timeout=30).status_code == 200
        assert service.returncode == 0, log.read_text(errors="replace")[-3000:]
        # Serve still answers on wfsched's port, for the other app only.
        assert requests.get(f"{url}/other", timeout=30).text == "other team's app"
        assert requests.get(f"{url}/healthz", timeout=30).status_code == 404
        output = log.read_text(errors="replace")
        assert "Serve keeps running on this cluster for its other applications: other" in output, output[-3000:]
        # Serve stays on its port: a start asking for another is refused before it deploys anything.
        elsewhere = {**os.environ, **env, "WFSCHED_PORT": str(free_port()), "PYTHONPATH": str(ROOT)}
        refused = subprocess.run(
            [sys.executable, "-m", "wfsched", "serve"], env=elsewhere, capture_output=True, text=True, timeout=180
        )
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert f"Serve already runs on this cluster on 127.0.0.1:{port} (applications: other)" in refused.stderr
        assert requests.get(f"{url}/healthz", timeout=30).status_code == 404


def refused_start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`wfsched serve` with `env` that is expected to stop before it serves."""
    command = [sys.executable, "-m", "wfsched", "serve"]
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=180)


def test_a_start_joined_to_wfsched_actors_that_run_other_settings_is_refused_until_it_restarts_them(
    tmp_path: Path,
) -> None:
    port = free_port()
    healthz = f"http://127.0.0.1:{port}/healthz"
    with local_cluster() as cluster:
        env = {**service_env(tmp_path, port), "WFSCHED_ADDRESS": cluster.address}
        with running_service(env, tmp_path / "first.log"):
            pass
        # Stopped, its actors run on (and their jobs would). A start with the same settings joins them.
        with running_service(env, tmp_path / "same.log"):
            assert requests.get(healthz, timeout=30).status_code == 200
        more_users = {**env, "WFSCHED_MAX_ACTIVE_USERS": "5"}
        refused = refused_start(more_users)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "already run on this cluster (namespace 'wfsched') with other settings" in refused.stderr
        assert "max_active_users 3 (this start: 5)" in refused.stderr and "--restart-control" in refused.stderr
        with pytest.raises(requests.ConnectionError):  # nothing was started: Serve ended with the last stop
            requests.get(healthz, timeout=30)
        # Asked to, a start stops them and creates them anew, with its own settings.
        restarted = tmp_path / "restarted.log"
        with running_service(more_users, restarted, options=["--restart-control"]):
            assert requests.get(healthz, timeout=30).status_code == 200
        assert "stopping wfsched's actors on this cluster to start them anew" in restarted.read_text(errors="replace")
        # Now the actors run with 5 active users: the start with 3 is the one refused.
        refused = refused_start(env)
        assert refused.returncode == 1 and "max_active_users 5 (this start: 3)" in refused.stderr, refused.stderr
