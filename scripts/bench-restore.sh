#!/usr/bin/env bash
# Restore and verify of a directory backup beside the standard tools (`scripts/bench-restore.sh`):
# - restore of a ~1 GB backup (`backupctl backups restore`, whole process, into a new path)
#   against `cp -a` of the same tree followed by `sync`, both on the same disk; target ≤ 1.3×;
# - verify (`backupctl backups verify`, whole process) in MB/s against `b3sum` over the
#   same files (BLAKE3, the manifest's algorithm; Debian's b3sum, which hashes on every core);
#   target ≥ 0.9×.
# A release `backupctl serve` on 127.0.0.1 in a temporary directory (removed on exit).
# Installs Debian's b3sum when missing.
# BENCH_MB (1024) sets the tree's size, BENCH_RUNS (3) the pairs; medians are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
mb=${BENCH_MB:-1024}
runs=${BENCH_RUNS:-3}

# shellcheck source=scripts/bench-serve.sh
source scripts/bench-serve.sh
if ! command -v b3sum >/dev/null; then
  sudo=""
  [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq b3sum >/dev/null
fi
bench_setup bench-restore

# The tree: a few large files (a database's segments) and many small ones.
mkdir -p "$work/trees/source/base" "$work/trees/source/small"
large=$((mb * 3 / 4 / 64))
for i in $(seq 1 "$large"); do
  head -c $((64 << 20)) /dev/urandom >"$work/trees/source/base/segment.$i"
done
small_mb=$((mb - large * 64))
for i in $(seq 1 $((small_mb * 4))); do
  head -c $((256 << 10)) /dev/urandom >"$work/trees/source/small/f$i"
done
bytes=$(du -sb "$work/trees/source" | cut -f1)

start_server

bctl clusters register --cluster-id bench --description Bench --provider directory --path "$work/trees/source" >/dev/null
backup=$(bctl --json backups create --source-cluster-id bench --description 'bench {index}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
for _ in $(seq 1 1200); do
  status=$(bctl --json backups get --id "$backup" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["backup"]["status"])')
  [[ "$status" != creating ]] && break
  sleep 0.5
done
[[ "$status" == available ]] || { echo "the backup is $status" >&2; exit 1; }
data="$work/server/backups/$backup/data"

# Alternating, and nothing deleted between runs: ext4 skips inodes freed in the last half
# minute when it allocates new ones, which made whatever ran right after a delete pay for it.
restore_times=()
cp_times=()
restore_once() {
  start=$EPOCHREALTIME
  bctl backups restore --id "$backup" --cluster-id "restored-$run" --description restored \
    --path "$work/trees/restored-$run" >/dev/null
  lap restore_times "$start"
}
cp_once() {
  start=$EPOCHREALTIME
  cp -a "$data" "$work/trees/cp-$run"
  sync
  lap cp_times "$start"
}
for run in $(seq 1 "$runs"); do
  if (( run % 2 )); then restore_once; cp_once; else cp_once; restore_once; fi
done

verify_times=()
b3_times=()
for run in $(seq 1 "$runs"); do
  start=$EPOCHREALTIME
  bctl backups verify --id "$backup" >/dev/null
  lap verify_times "$start"
  start=$EPOCHREALTIME
  (cd "$data" && find . -type f -print0 | xargs -0 b3sum >/dev/null)
  lap b3_times "$start"
done

python3 - "$bytes" "${restore_times[*]}" "${cp_times[*]}" "${verify_times[*]}" "${b3_times[*]}" <<'PY'
import json, statistics, sys
size = int(sys.argv[1])
restore, cp, verify, b3 = (
    statistics.median(float(x) for x in arg.split()) for arg in sys.argv[2:6])
mb = size / 1e6
print(json.dumps({
    "treeMB": round(mb, 1),
    "restoreSeconds": round(restore, 2),
    "cpASyncSeconds": round(cp, 2),
    "restoreOverCp": round(restore / cp, 2),
    "restoreWithin1_3x": restore / cp <= 1.3,
    "verifyMBps": round(mb / verify, 1),
    "b3sumMBps": round(mb / b3, 1),
    "verifyOverB3sum": round(b3 / verify, 2),
    "verifyAtLeast0_9x": b3 / verify >= 0.9,
}, indent=2))
PY
