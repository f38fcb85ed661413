#!/usr/bin/env bash
# Install the OpenID Connect provider the tests start (tests/oidc: the npm package
# oidc-provider, pinned by package-lock.json) with `npm ci`, when its lock file is newer
# than the installed copy. Without Node.js and npm it says so and the tests that need the
# provider skip; a failed install fails `make test`.
set -euo pipefail
cd "$(dirname "$0")/../tests/oidc"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "oidc: node and npm are not installed; the OpenID Connect provider tests will" \
        "skip (Debian/Ubuntu: apt-get install nodejs npm; Node.js 20 or newer)" >&2
    exit 0
fi
stamp=node_modules/.package-lock.json
if [[ -f $stamp && $stamp -nt package-lock.json && -d node_modules/oidc-provider ]]; then
    exit 0
fi
echo "oidc: installing oidc-provider into tests/oidc/node_modules (npm ci)"
npm ci --no-audit --no-fund --loglevel=error
