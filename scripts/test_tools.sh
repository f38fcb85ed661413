#!/usr/bin/env bash
# Tools the test suite uses beyond Python packages: docker-compose, to validate
# docker-compose.yml as Compose reads it. Installed from Debian's packages when missing and
# this runs as root with apt-get; otherwise it says so, and that test skips with the reason.
set -euo pipefail

if command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1; then
    exit 0
fi
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "tools: installing docker-compose (Debian package) to validate docker-compose.yml"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
else
    echo "tools: docker-compose is not installed; the compose file test will skip" \
        "(apt-get install docker-compose)" >&2
fi
