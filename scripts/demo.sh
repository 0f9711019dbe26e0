#!/usr/bin/env bash
# README command 1: install what is missing, then run the quickstart demo.
# Extra arguments go to the demo (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec cargo run --quiet --example quickstart -- "$@"
