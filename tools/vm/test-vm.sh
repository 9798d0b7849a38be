#!/usr/bin/env bash
# The VM tier: the harness's own tests on the host, then the VM tests in the
# guest. Both report into tools/vm/.test-results (host.json, vitest.json).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
rm -rf .test-results
start=$(date +%s)
status=0
vitest run --config vitest.host.config.ts || status=1
tsx src/cli.ts test || status=1
echo "vm: tier finished in $(($(date +%s) - start)) s with status $status" >&2
exit $status
