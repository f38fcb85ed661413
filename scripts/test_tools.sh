#!/usr/bin/env bash
# Tools the test suite uses beyond Python packages, from Debian's packages, installed when
# missing and this runs as root with apt-get; otherwise it says so, and the tests that
# need them skip with the reason:
#   docker-compose             to validate docker-compose.yml as Compose reads it;
#   chromium, chromium-driver  the browser the web UI tests drive (/usr/bin/chromium;
#                              Playwright's Python package drives it, and downloads none).
set -euo pipefail

missing=()
if ! command -v docker-compose >/dev/null && ! docker compose version >/dev/null 2>&1; then
    missing+=(docker-compose)
fi
if [[ ! -x /usr/bin/chromium ]]; then
    missing+=(chromium)
fi
if [[ ! -x /usr/bin/chromedriver ]]; then
    missing+=(chromium-driver)
fi
if [[ ${#missing[@]} == 0 ]]; then
    exit 0
fi
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "tools: installing ${missing[*]} (Debian packages) for the tests"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
    echo "tools: ${missing[*]} not installed; the tests that need them will skip" \
        "(apt-get install ${missing[*]})" >&2
fi
