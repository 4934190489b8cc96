# The commands the README names. `make demo` and `make test` set everything up first.
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch (on a GPU machine: TORCH="torch==2.13.0" from an index with CUDA builds).
TORCH ?= torch==2.13.0
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: setup fetch browser prometheus postgres demo serve test test-fast lint format typecheck bench load

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

fetch: setup
	$(VENV)/bin/wfsched fetch

# Debian's chromium for the real-browser test (root, as on CI); nothing downloads a browser of its own.
browser:
	bash scripts/install-browser.sh

# Debian's prometheus (promtool, a server for the metrics tests) and docker-compose (validates the
# compose file without a daemon); root, as on CI. The prometheus service is never started.
prometheus:
	bash scripts/install-prometheus.sh

# Debian's postgresql: the server the store tests and the PostgreSQL e2e tests start in a temporary
# folder (tests/support/postgres.py); root, as on CI. The package's own cluster is never started.
postgres:
	bash scripts/install-postgres.sh

demo: fetch
	$(VENV)/bin/wfsched demo

serve: fetch
	$(VENV)/bin/wfsched serve

test: fetch browser prometheus postgres
	$(PY) -m pytest

# The unit layer: no Ray, no network, no model (under a minute here); the store tests run on a
# local PostgreSQL too.
test-fast: setup postgres
	$(PY) -m pytest tests/unit

lint: setup
	$(VENV)/bin/ruff check wfsched tests bench
	$(VENV)/bin/ruff format --check wfsched tests bench

format: setup
	$(VENV)/bin/ruff format wfsched tests bench
	$(VENV)/bin/ruff check --fix wfsched tests bench

typecheck: setup
	$(VENV)/bin/mypy

bench: fetch
	$(PY) bench/scheduler.py
	$(PY) bench/progress.py
	$(PY) bench/pipeline.py
	$(PY) bench/postprocess.py
	$(PY) bench/tenant_limits.py
	$(PY) bench/fairness.py

# Locust, headless: 50 users for 2 minutes against a local service it starts and stops (test job
# types, no model); exits non-zero when a threshold of bench/locustfile.py is missed.
load: setup
	$(PY) bench/load.py $(LOCUST_ARGS)
