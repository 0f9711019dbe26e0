#!/usr/bin/env bash
# README command 1: install what is missing, then run the quickstart demo.
# Extra arguments go to the demo (try --help): `bash scripts/demo.sh --hold` keeps its servers
# running and prints how to run the samples of examples/config/ against them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The first build on a fresh machine compiles every dependency (about two minutes on 2 cores):
# cargo's own progress shows it, instead of a silent wait. An up-to-date build takes a second.
echo "== building the demo (cargo build --example quickstart; the first build takes a few minutes)"
cargo build --example quickstart
echo "== running the demo"
exec cargo run --quiet --example quickstart -- "$@"
