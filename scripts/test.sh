#!/usr/bin/env bash
# The one command that sets up and runs every test: `scripts/test.sh`.
#
# It installs what it needs on a fresh machine that has only the Rust toolchain (and the
# machine's python3/node), and skips every install that is already in place, so running it
# twice does nothing twice. Every suite runs; none is skipped for lack of a tool.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Each step's name and seconds, printed as a table at the end (and on failure), so a slow
# step shows in CI's log.
steps=()
step_started=$SECONDS
step_name=""
close_step() {
  if [[ -n "$step_name" ]]; then
    steps+=("$((SECONDS - step_started))|$step_name")
  fi
  step_name=""
}
step() {
  close_step
  step_name="$*"
  step_started=$SECONDS
  printf '\n==> %s\n' "$*"
}
print_times() {
  local status=$?
  close_step
  printf '\n%8s  %s\n' seconds step
  local row
  for row in "${steps[@]}"; do
    printf '%8s  %s\n' "${row%%|*}" "${row#*|}"
  done
  printf '%8s  %s\n' "$SECONDS" "total"
  return $status
}
trap print_times EXIT

# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
# The target directory outlives the clone, and artifacts of older dependency versions and
# feature sets pile up in it: past 30 GiB, start it afresh rather than fill the disk.
if [[ -d "$target_dir" ]] && (( $(du -sk "$target_dir" | cut -f1) > 30 * 1024 * 1024 )); then
  echo "the target directory $target_dir is over 30 GiB: starting it afresh"
  rm -rf "$target_dir"
fi
echo "build outputs in $target_dir"

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

step "the core builds for wasm32-unknown-unknown (no I/O, no clock, no threads, no std)"
cargo build -p backup-core --target wasm32-unknown-unknown
# The module as scripts/build-wasm.sh builds it: without std, with the crate's own panic handler.
cargo clippy -p backup-wasm --target wasm32-unknown-unknown --no-default-features -- -D warnings

step "unit, property, contract and end-to-end tests"
cargo test --workspace

for script in scripts/build-wasm.sh scripts/test-wasm.sh scripts/test-console.sh scripts/test-api-schema.sh scripts/test-postgres.sh scripts/test-aws.sh; do
  if [[ -f "$root/$script" ]]; then
    step "$script"
    bash "$root/$script"
  fi
done

close_step
printf '\n==> all tests passed\n'
