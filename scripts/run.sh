#!/usr/bin/env bash
# Runs the product on this machine: `scripts/run.sh [serve options]`.
#
# Builds the release `backupctl` (the `local` profile: optimised, no LTO, no AWS SDK) and the
# web form's WebAssembly package side by side, then starts `backupctl serve` on the embedded
# default: the HTTP API, the web form and console, and the scheduler on
# http://127.0.0.1:8080, with state in ./.backupctl/state.db and backups in
# ./.backupctl/backups/. The API is served as soon as the server is built; on a first start
# the form may still be building then, and its page works as soon as its files are written
# (the server reads wasm/web/ at each request). Later runs find both up to date. Options are
# passed to `backupctl serve` (`--listen 127.0.0.1:9000`, `--data-dir /var/lib/backupctl`, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh

log="${TMPDIR:-/tmp}/backupctl-build-wasm.log"
(
  if bash scripts/build-wasm.sh >"$log" 2>&1; then
    echo "run.sh: the web form is built and served" >&2
  else
    # The API and the scheduler do not need the form: say so, and serve without it.
    echo "run.sh: warning: the web form could not be built (see $log); the API works without it" >&2
  fi
) &
# Local mode needs no AWS SDK: without the `aws` feature the build takes a fraction of the
# time (`cargo build --release -p backupctl` builds the whole CLI).
cargo build --profile local -p backupctl --no-default-features
exec "$target_dir/local/backupctl" serve "$@"
