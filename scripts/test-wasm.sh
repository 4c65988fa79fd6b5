#!/usr/bin/env bash
# Tests the WebAssembly package and the job form: `scripts/test-wasm.sh`.
#
#   1. wasm-bindgen-test: each export called as JavaScript calls it, under Node
#   2. parity: backupctl and the wasm module (under Node) print the same JSON for every
#      SPEC §2–§3 example and a few hundred generated schedules and templates
#   3. end to end: the form in headless Debian Chromium (playwright-core), served on
#      127.0.0.1 with a stub API; screenshots in tests/artifacts/
#   4. the form against the real `backupctl serve`: validateJob's `fields` equal the
#      server's 400 `fields` for the same bodies, and a job typed into the form is created
#
# The host-side tests of wasm/ run with `cargo test --workspace`. This script builds the
# package first (scripts/build-wasm.sh, which does nothing when it is up to date) and
# installs Chromium from Debian when /usr/bin/chromium is missing; it never downloads a
# browser of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
root=$(pwd)
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

bash "$root/scripts/build-wasm.sh"

step "wasm: wasm-bindgen-test of each export, under Node"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p backup-wasm --target wasm32-unknown-unknown --test node
echo "wasm-bindgen-test (Node): passed"

step "wasm: headless Chromium"
if [[ ! -x /usr/bin/chromium ]]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-dejavu-core
else
  /usr/bin/chromium --version
fi

step "wasm: backupctl, for the parity and server tests"
cargo build -p backupctl --bin backupctl
target_dir=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

cd "$root/tests/browser"
step "wasm: parity of backupctl and the wasm module (node --test parity.test.mjs)"
export BACKUPCTL_BIN="$target_dir/debug/backupctl"
node --test --test-reporter=spec parity.test.mjs
echo "parity suite: passed"

step "wasm: the job form in Chromium (node --test e2e.test.mjs; screenshots in tests/artifacts/)"
node --test --test-reporter=spec --test-timeout=300000 e2e.test.mjs
echo "job form end-to-end suite: passed"

step "wasm: the form against backupctl serve (node --test server.test.mjs)"
node --test --test-reporter=spec --test-timeout=300000 server.test.mjs
echo "job form against backupctl serve suite: passed"
