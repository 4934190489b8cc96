"""`make load`: Locust, headless, against a local service that this starts and always stops.

The service is the real one (Ray, Serve over HTTP, SQLite in a fresh temp folder) with the test job
types and the served defaults otherwise (3 active users). Locust runs in its own process (it
monkey-patches the standard library with gevent; Ray must not share a process with that) and its
exit code, the verdict of `bench/locustfile.py`'s thresholds, is this script's.

    python bench/load.py [Locust options, which win over the defaults: -u 100 -t 5m --p95-read-ms 300]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.service import bench_service
from wfsched.config import Settings

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
# At least 50 users for 2 minutes (the floor), all started within the first 10 s.
DEFAULTS = ["--headless", "--only-summary", "--users", "50", "--spawn-rate", "5", "--run-time", "2m"]


def main() -> int:
    # The served check of lanes (tests check them every 1 s; that is not the load being measured).
    with bench_service(reconcile_interval_s=Settings().reconcile_interval_s) as (settings, base):
        image = settings.data_roots[0] / "none.svs"
        command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", base, "--image-path", str(image)]
        print(f"load test against {base}: {' '.join([*DEFAULTS, *sys.argv[1:]])}", flush=True)
        return subprocess.run([*command, *DEFAULTS, *sys.argv[1:]], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
