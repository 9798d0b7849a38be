#!/usr/bin/env bash
# The QEMU tier (tools/qemu/README.md): set-up (cached), then the tests, one
# file at a time. Reports into tools/qemu/.test-results/vitest.json.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
rm -rf .test-results
start=$(date +%s)
status=0
bash guest/prepare.sh >/dev/null || { echo "qemu: set-up FAILED (guest/prepare.sh, messages above)" >&2; exit 1; }
vitest run "$@" || status=1
echo "qemu: tier finished in $(($(date +%s) - start)) s with status $status" >&2
exit $status
