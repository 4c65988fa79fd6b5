#!/usr/bin/env bash
# Fuzzes the pure core: each cargo-fuzz target in fuzz/ for SECONDS (default 600), one after
# the other, then prints each one's executions, coverage and findings.
#
#   scripts/fuzz.sh [SECONDS] [TARGET ...]     # targets: schedule template (default: both)
#
# Needs the nightly toolchain and cargo-fuzz (installed here when missing). The corpus grows in
# fuzz/corpus/TARGET across runs; a finding is written to fuzz/artifacts/TARGET/ and the
# script exits 1. Reproduce one with `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/FILE`
# and shrink it with `cargo +nightly fuzz tmin TARGET fuzz/artifacts/TARGET/FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(schedule template)

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# A few valid inputs so the fuzzer starts from the dialect instead of from nothing.
seed() {
  local dir=fuzz/corpus/$1
  shift
  mkdir -p "$dir"
  [[ -n $(ls -A "$dir") ]] && return
  local i=0
  for text in "$@"; do
    printf '%s' "$text" >"$dir/seed-$i"
    i=$((i + 1))
  done
}
seed schedule '0 */1 * * *' '30 2 * * *' '0 12 * * MON-FRI' '15 */6 1,15 * *' '0 0 1 */3 *' \
  '0 0 13 * 5' '0 0 29 2 *' '5 0,12 1-7/3 jan-mar/2 ?' '@weekly' '0 0 L * *' '*/30 * * * *'
seed template '{cluster} Hourly Backup {datetime:RFC3339}' '{{literal}} {index:hex}' \
  '{datetime:json} {datetime:unix} {datetime:rfc822} {cluster:id} {cluster:region}' '{nope} }{'

status=0
summary=()
for target in "${targets[@]}"; do
  mkdir -p "fuzz/artifacts/$target"
  log="fuzz/artifacts/$target/last-run.log"
  before=$(ls "fuzz/artifacts/$target" | grep -cE '^(crash|leak|timeout|oom|slow-unit)-' || true)
  printf '==> fuzzing %s for %ss (log: %s)\n' "$target" "$seconds" "$log"
  set +e
  cargo +nightly fuzz run "$target" -- \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -dict="fuzz/$target.dict" -print_final_stats=1 >"$log" 2>&1
  code=$?
  set -e
  after=$(ls "fuzz/artifacts/$target" | grep -cE '^(crash|leak|timeout|oom|slow-unit)-' || true)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  rate=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' || true)
  findings=$((after - before))
  printf '    last status: %s\n' "${last:-none (see log)}"
  grep -E '^stat::' "$log" | sed 's/^/    /' || true
  if [[ $code -ne 0 || $findings -gt 0 ]]; then
    status=1
    printf '    FINDINGS (exit %s):\n' "$code"
    grep -E '^(==[0-9]+==|thread .* panicked|SUMMARY|artifact_prefix|Test unit written)' "$log" | sed 's/^/      /' | head -20
  fi
  summary+=("$(printf '%-9s %12s execs %8s exec/s  %s  findings: %s' "$target" "${execs:-?}" "${rate:-?}" \
    "$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' <<<"$last" || echo 'cov: ?')" "$findings")")
done

printf '\n==> summary (%ss per target)\n' "$seconds"
printf '%s\n' "${summary[@]}"
exit $status
