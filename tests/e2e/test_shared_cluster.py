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
