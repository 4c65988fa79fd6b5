#!/usr/bin/env bash
# The web console's end-to-end test: tests/browser/console.test.mjs drives the pages of
# wasm/web/console/ in headless Debian Chromium against a real `backupctl serve` on
# 127.0.0.1, and keeps a screenshot of every page in tests/artifacts/console/.
#
# Assumes what scripts/test.sh has done before it: the WebAssembly package built into
# wasm/web/pkg/ by scripts/build-wasm.sh (the job form and the schedule descriptions need
# it). Builds `backupctl` itself, and installs Chromium and the test's node packages when
# they are missing, so it also runs on its own: `scripts/test-console.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

step "console: build backupctl"
cargo build -p backupctl
# Wherever cargo puts it (CARGO_TARGET_DIR included), the test starts this binary.
target_dir=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export BACKUPCTL_BIN=${BACKUPCTL_BIN:-$target_dir/debug/backupctl}

step "console: headless Chromium and node packages"
if [[ ! -x /usr/bin/chromium ]]; then
  # Debian's package; the test never downloads a browser of its own.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
bash tests/browser/install.sh
if [[ ! -f wasm/web/pkg/backup_wasm.js ]]; then
  echo "note: wasm/web/pkg/ is not built (scripts/build-wasm.sh); the form and schedule descriptions need it" >&2
fi

step "console: end-to-end test (screenshots in tests/artifacts/console/)"
cd tests/browser
BACKUPCTL_BIN="${BACKUPCTL_BIN:-$root/target/debug/backupctl}" \
  node --test --test-concurrency=1 --test-timeout=240000 console.test.mjs
