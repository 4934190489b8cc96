#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for the real-browser test (tests/e2e/test_web.py).
# Only Debian's package: nothing here downloads a browser build of its own. Idempotent and quiet.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser.sh: /usr/bin/chromium is missing; run this script as root (it uses apt-get)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "install-browser.sh: installed Debian's chromium"
