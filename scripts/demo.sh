#!/usr/bin/env bash
# The README's first command: set up (idempotent), then run the Star Wars demo end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec ./bin/membrane demo starwars "$@"
