#!/usr/bin/env bash
# The end-to-end benchmark (README "Performance"): installs what is missing (scripts/setup.sh,
# mydumper included), then runs benches/e2e.rs: full migration against mydumper/myloader, incremental
# catch-up against MariaDB's own replication (serial, optimistic, aggressive), the downstream's
# raw insert capacity, and the syncer's peak memory at 1x and 2x backlog. About 8 minutes on
# 2 cores; prints a Markdown table and writes it to target/e2e-results.md.
#
#   scripts/bench.sh              the full run (8 x 100k rows, 500k / 300k / 300k row changes)
#   scripts/bench.sh --quick      a tenth of the data, about 30 s (a smoke test)
#   scripts/bench.sh --focus[=oltp_insert]   one workload, ours and the serial replica (tuning)
#   scripts/bench.sh --output results.md     where the table goes
#
# DM_BENCH_PERF=<dir> records `perf record -a -g` while our syncer catches up.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec cargo bench --bench e2e -- "$@"
