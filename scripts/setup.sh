#!/usr/bin/env bash
# Installs what the project needs from its own files: pnpm (pinned, into
# .tools/ so nothing global changes), the locked dependencies, then builds.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export TURBO_TELEMETRY_DISABLED=1
PNPM_VERSION=12.21.0
if [ ! -x .tools/node_modules/.bin/pnpm ] || [ "$(.tools/node_modules/.bin/pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  echo "setup: installing pnpm $PNPM_VERSION into .tools/" >&2
  # Prefer the local cache: a machine whose registry is unreachable but that
  # has installed before still sets up.
  npm install --silent --no-audit --no-fund --prefer-offline --prefix .tools "pnpm@$PNPM_VERSION" >&2 ||
    npm install --silent --no-audit --no-fund --offline --prefix .tools "pnpm@$PNPM_VERSION" >&2
fi
export PATH="$root/.tools/node_modules/.bin:$PATH"
pnpm install --frozen-lockfile --prefer-offline --reporter=silent >&2 ||
  pnpm install --frozen-lockfile --offline --reporter=silent >&2
pnpm turbo run build --output-logs=errors-only >&2
