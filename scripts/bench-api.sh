#!/usr/bin/env bash
# Benchmarks the local server's API: starts a release `backupctl serve` in a temporary
# directory (loopback only), creates 1,000 jobs, measures GET …/jobs requests per second with
# concurrent clients, and `backupctl jobs run --wait` until it exits with `succeeded` for a
# 100 MB cluster (the whole process).
#
# Tunable through the environment (all bounded): BENCH_JOBS (1000), BENCH_CLIENTS (4),
# BENCH_REQUESTS (400), BENCH_CLUSTER_MB (100), BENCH_RUNS (3), BENCH_MAX_SECONDS (120, per
# phase). See functions/backupctl/examples/bench_api.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
# The local mode only: without the AWS SDK (`--no-default-features`), as `scripts/run.sh`
# and the other benchmarks build it, which on a cold cache is minutes shorter.
cargo build --release --locked -p backupctl --no-default-features --bin backupctl --example bench_api
exec cargo run --release --locked -q -p backupctl --no-default-features --example bench_api -- "$@"
