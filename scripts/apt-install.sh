#!/usr/bin/env bash
# Installs Debian packages that the tests need, as root (as on CI), quietly (apt's output is shown
# only when it fails), and without starting a service any of them brings (the tests start their
# own servers). Usage: apt-install.sh CALLER PACKAGE...; CALLER names the script in messages.
set -euo pipefail

caller=$1
shift
if [ "$(id -u)" -ne 0 ]; then
    echo "$caller: $* missing; run it as root (it uses apt-get)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
cleanup=(rm -f "$log")
# A package's service starts on install where an init system runs; a policy-rc.d that exits 101
# forbids that while apt-get runs.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    cleanup+=("$policy")
fi
trap '"${cleanup[@]}"' EXIT
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "$caller: apt-get could not install $*" >&2
    exit 1
fi
echo "$caller: installed Debian's $*"
