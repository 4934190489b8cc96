#!/usr/bin/env bash
# Installs Debian's prometheus (promtool, and the server tests/support/prometheus.py starts) and
# docker-compose (validates deployments/docker-compose.yml without a Docker daemon), for
# tests/e2e/test_deployments.py. Only Debian's packages; the prometheus service is never started.
# Idempotent and quiet: apt's output is shown only when it fails.
set -euo pipefail

missing=()
{ [ -x /usr/bin/promtool ] && [ -x /usr/bin/prometheus ]; } || missing+=(prometheus)
[ -x /usr/bin/docker-compose ] || missing+=(docker-compose)
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-prometheus.sh: ${missing[*]} missing; run this script as root (it uses apt-get)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
cleanup=(rm -f "$log")
# Debian's prometheus package starts its service on install where an init system runs; a
# policy-rc.d that exits 101 forbids that while apt-get runs (the tests start their own server).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    cleanup+=("$policy")
fi
trap '"${cleanup[@]}"' EXIT
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-prometheus.sh: apt-get could not install ${missing[*]}" >&2
    exit 1
fi
echo "install-prometheus.sh: installed Debian's ${missing[*]}"
