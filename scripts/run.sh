#!/usr/bin/env bash
# Runs the product on this machine: `scripts/run.sh [serve options]`.
#
# Builds the web form's WebAssembly package (once; later runs find it up to date) and the
# release `backupctl`, then starts `backupctl serve` on the embedded default: the HTTP API,
# the web form and console, and the scheduler on http://127.0.0.1:8080, with state in
# ./.backupctl/state.db and backups in ./.backupctl/backups/. Options are passed to
# `backupctl serve` (`--listen 127.0.0.1:9000`, `--data-dir /var/lib/backupctl`, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! bash scripts/build-wasm.sh >/tmp/backupctl-build-wasm.log 2>&1; then
  # The API and the scheduler do not need the form: say so, and serve without it.
  echo "warning: the web form could not be built (see /tmp/backupctl-build-wasm.log); serving the API without it" >&2
fi
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
# Local mode needs no AWS SDK: without the `aws` feature the release build takes a fraction
# of the time (`cargo build --release -p backupctl` builds the whole CLI).
cargo build --release -p backupctl --no-default-features
exec "$target_dir/release/backupctl" serve "$@"
