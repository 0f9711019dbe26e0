#!/usr/bin/env bash
# README command 2: install what is missing, check formatting and lints, run every test.
# Tests that need mariadbd/etcd skip loudly when those are absent, and fail when CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo clippy dm-testkit --features containers (MySQL 8 / TiDB via Docker: built here, not run)"
cargo clippy -p dm-testkit --all-targets --features containers -- -D warnings
echo "== doc tests"
cargo test --workspace --doc --quiet
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
