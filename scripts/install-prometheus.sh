#!/usr/bin/env bash
# Installs Debian's prometheus (promtool, and the server tests/support/prometheus.py starts) and
# docker-compose (validates deployments/docker-compose.yml without a Docker daemon), for
# tests/e2e/test_deployments.py. Only Debian's packages; the prometheus service is never started.
# Idempotent and quiet (scripts/apt-install.sh).
set -euo pipefail

missing=()
{ [ -x /usr/bin/promtool ] && [ -x /usr/bin/prometheus ]; } || missing+=(prometheus)
[ -x /usr/bin/docker-compose ] || missing+=(docker-compose)
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
exec bash "$(dirname "$0")/apt-install.sh" install-prometheus.sh "${missing[@]}"
