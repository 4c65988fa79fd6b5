#!/usr/bin/env bash
# The one command that sets up and runs every test: `scripts/test.sh`.
#
# It installs what it needs on a fresh machine that has only the Rust toolchain (and the
# machine's python3/node), and skips every install that is already in place, so running it
# twice does nothing twice. Every suite runs; none is skipped for lack of a tool.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

step "toolchain: rustfmt, clippy, wasm32-unknown-unknown"
installed_components=$(rustup component list --installed 2>/dev/null || true)
for component in rustfmt clippy; do
  grep -q "^$component" <<<"$installed_components" || rustup component add "$component"
done
rustup target list --installed | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown

step "formatting"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets -- -D warnings

step "the core builds for wasm32-unknown-unknown (no I/O, no clock, no threads)"
cargo build -p backup-core --target wasm32-unknown-unknown

step "unit, property, contract and end-to-end tests"
cargo test --workspace

for script in scripts/build-wasm.sh scripts/test-wasm.sh scripts/test-console.sh scripts/test-aws.sh; do
  if [[ -f "$root/$script" ]]; then
    step "$script"
    bash "$root/$script"
  fi
done

step "all tests passed"
