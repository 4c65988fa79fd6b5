#!/usr/bin/env bash
# Benchmarks the schedule core against croner and cron (functions/core/benches/schedule.rs)
# and prints a table of medians with the targets:
#   - next 100 runs: ours at least 5x faster than the faster of croner and cron, on every
#     benchmark expression;
#   - parse + validate: ours against the faster of the two (reported, no target);
#   - check (parse, validate, describe, EventBridge, minimum interval): ours at most 5 µs on
#     every benchmark expression.
#
#   scripts/bench-core.sh [--] [CRITERION ARGS ...]    # e.g. --measurement-time 5
#
# Medians come from criterion's saved estimates (target/criterion/*/*/*/new/estimates.json).
# Exits 1 when a target is missed.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh

target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
# Results of an earlier run must not pass for this one's.
rm -rf "$target_dir/criterion/next_100" "$target_dir/criterion/parse" "$target_dir/criterion/check"

# A leading `--` (as in `cargo bench -- ARGS`) is accepted and dropped.
if [[ "${1:-}" == "--" ]]; then
  shift
fi
cargo bench -p backup-core --bench schedule -- --noplot "$@"

python3 - "$target_dir/criterion" <<'EOF'
import json, os, sys

root = sys.argv[1]
NEXT_100_RATIO = 5.0  # ours at least this many times faster than the faster library
CHECK_MAX_NS = 5_000  # check median at most this
medians = {}  # (group, expression) -> {function: ns}
order = []
for group in ("next_100", "parse", "check"):
    for dirpath, _, files in sorted(os.walk(os.path.join(root, group))):
        if os.path.basename(dirpath) != "new" or "estimates.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            median = json.load(f)["median"]["point_estimate"]
        key = (group, bench["value_str"])
        if key not in medians:
            order.append(key)
        medians.setdefault(key, {})[bench["function_id"]] = median

def fmt(ns):
    if ns is None:
        return "-"
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"

failed = False
for group, title, target in (
    ("next_100", f"next 100 runs from 2026-01-01T00:00:00Z (target: ours at least {NEXT_100_RATIO:g}x faster)", NEXT_100_RATIO),
    ("parse", "parse + validate (no target)", None),
):
    print(f"\n{title}")
    print(f"{'expression':<18} {'ours':>10} {'croner':>10} {'cron':>10} {'ours vs faster':>15}")
    for key in order:
        if key[0] != group:
            continue
        row = medians[key]
        ours, croner, cron = row.get("ours"), row.get("croner"), row.get("cron")
        faster = min(v for v in (croner, cron) if v is not None)
        ratio = faster / ours
        mark = ""
        if target is not None and ratio < target:
            mark, failed = f"  < {target:g}x", True
        print(f"{key[1]:<18} {fmt(ours):>10} {fmt(croner):>10} {fmt(cron):>10} {ratio:>14.1f}x{mark}")

print(f"\ncheck: parse + validate + describe + eventbridge + min interval (target: ours at most {fmt(CHECK_MAX_NS)})")
for key in order:
    if key[0] != "check":
        continue
    ours = medians[key]["ours"]
    mark = ""
    if ours > CHECK_MAX_NS:
        mark, failed = f"  over {fmt(CHECK_MAX_NS)}", True
    print(f"{key[1]:<18} {fmt(ours):>10}{mark}")

sys.exit(1 if failed else 0)
EOF
