#!/usr/bin/env bash
# The README's second command: set up (idempotent), then run every test tier.
# Privileged e2e tests need root; under CI=true they never skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc -p tsconfig.test.json
exec npx vitest run "$@"
