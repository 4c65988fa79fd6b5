#!/usr/bin/env bash
# Benchmarks the local server's API: starts a release `backupctl serve` in a temporary
# directory (loopback only), creates 1,000 jobs, measures GET …/jobs requests per second with
# concurrent clients, and the time from `jobs run` to `succeeded` for a 100 MB cluster.
#
# Tunable through the environment (all bounded): BENCH_JOBS (1000), BENCH_CLIENTS (4),
# BENCH_REQUESTS (400), BENCH_CLUSTER_MB (100), BENCH_RUNS (3), BENCH_MAX_SECONDS (120, per
# phase). See functions/backupctl/examples/bench_api.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
cargo build --release --locked -p backupctl --bin backupctl --example bench_api
exec cargo run --release --locked -q -p backupctl --example bench_api -- "$@"
