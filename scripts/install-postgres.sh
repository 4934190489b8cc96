#!/usr/bin/env bash
# Installs Debian's postgresql: the server binaries (/usr/lib/postgresql/*/bin) that
# tests/support/postgres.py starts as an unprivileged cluster in a temporary folder, and the
# `postgres` account it runs them as when the tests run as root. Only Debian's packages; the
# package's own cluster is never started. Idempotent and quiet (scripts/apt-install.sh).
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && id postgres >/dev/null 2>&1; then
    exit 0
fi
exec bash "$(dirname "$0")/apt-install.sh" install-postgres.sh postgresql
