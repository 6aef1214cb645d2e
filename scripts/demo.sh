#!/usr/bin/env bash
# The README's first command: set up (idempotent), then run the Star Wars demo and the mediabot
# (toFQDNs) demo end to end. Each exits non-zero if any outcome differs from Cilium's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
./bin/membrane demo starwars "$@"
exec ./bin/membrane demo mediabot "$@"
