#!/usr/bin/env bash
# Directory backups beside the standard tools (`scripts/bench-backup.sh`), on two trees: 100 MB
# in 25 files, and 1 GB in 20,000 files. For each, medians over alternating runs of:
# - first backup: `backupctl backups create --wait 3600` (whole process, until the backup is
#   available) against `cp -a` + `sync` of the same tree; target ≤ 1.25×;
# - second backup after rewriting 1% of the files: against `cp -a` + `sync` (target ≤ 0.1×)
#   and against `rsync -a --link-dest=<previous copy>` + `sync` (target ≤ 1×); beside them,
#   `cp -al` + `sync` of the tree (hard links alone, one at a time: nothing read, hashed or
#   recorded), what one thread that links each unchanged file takes at least;
# - restore: `backupctl backups restore` (whole process) against `cp -a` + `sync` of the
#   backup's data; target ≤ 1.3×;
# - disk: two backups of an unchanged tree against one (`du`, links counted once); ≤ 1.05×.
# Everything on the same disk, in a temporary directory removed on exit, with a release
# `backupctl serve` on 127.0.0.1. Installs Debian's rsync when missing.
# BENCH_RUNS (3) sets the pairs, BENCH_TREES ("small large") the trees; prints JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
runs=${BENCH_RUNS:-3}
trees=${BENCH_TREES:-small large}

if ! command -v rsync >/dev/null; then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq rsync >/dev/null
fi

# shellcheck source=scripts/bench-serve.sh
source scripts/bench-serve.sh
bench_setup bench-backup

mkdir -p "$work/trees" "$work/copies"
start_server


# make_tree DIR FILES BYTES_EACH: random content, so nothing compresses or dedups.
make_tree() {
  python3 - "$1" "$2" "$3" <<'PY'
import os, sys
root, files, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per_dir = 1000
for i in range(files):
    d = os.path.join(root, f"d{i // per_dir:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}"), "wb") as f:
        f.write(os.urandom(size))
PY
}

# touch_percent DIR ROUND: rewrites 1% of the files (at least one) with new content.
touch_percent() {
  python3 - "$1" "$2" <<'PY'
import os, sys
root, round_ = sys.argv[1], int(sys.argv[2])
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
step = max(1, len(files) // max(1, len(files) // 100))
for path in files[round_ % step::step]:
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.write(os.urandom(min(size, 4096)))
PY
}

# backup CLUSTER: sets `took` to the seconds the `backupctl backups create` process took,
# start to exit, and `made` to the new backup's id once it is available. Called without
# `$(...)`, and the id read from the output after the clock stops, so that neither a
# subshell nor `sed` is charged to the backup.
backup() {
  local t out
  t=$EPOCHREALTIME
  out=$(bctl backups create --source-cluster-id "$1" --description 'bench {index}' --wait 3600)
  took=()
  lap took "$t"
  [[ "$out" == *"(available)"* ]] || { echo "backup not available: $out" >&2; exit 1; }
  made=$(sed -n 's/^Created backup \([^ ]*\) of cluster.*/\1/p' <<<"$out")
}

results=()
for tree in $trees; do
  case "$tree" in
    small) files=25 size=$((4 << 20)) ;;
    large) files=20000 size=$((50 << 10)) ;;
    *) echo "BENCH_TREES: small or large, not $tree" >&2; exit 2 ;;
  esac
  src="$work/trees/$tree"
  make_tree "$src" "$files" "$size"
  sync
  bctl clusters register --cluster-id "$tree" --description "$tree" --provider directory \
    --path "$src" >/dev/null
  first=() cp_first=() second=() cp_second=() rsync_second=() links_only=() restore=() cp_restore=()
  last_rsync=""
  # Nothing is deleted until the tree is done: ext4 skips inodes freed in the last half minute
  # when it allocates new ones, which made whatever ran right after a delete pay for it.
  for run in $(seq 1 "$runs"); do
    # First backups: every run starts from a cluster with no available backup.
    bctl clusters register --cluster-id "$tree-first-$run" --description first --provider directory \
      --path "$src" >/dev/null
    sync
    if (( run % 2 )); then
      backup "$tree-first-$run"; first+=("$took")
      t=$EPOCHREALTIME; cp -a "$src" "$work/copies/cp-$run"; sync; lap cp_first "$t"
    else
      t=$EPOCHREALTIME; cp -a "$src" "$work/copies/cp-$run"; sync; lap cp_first "$t"
      backup "$tree-first-$run"; first+=("$took")
    fi
  done
  # Second backups: each after 1% of the files changed, linking from the one before.
  backup "$tree"
  rsync -a "$src/" "$work/copies/rsync-0/"
  last_rsync="$work/copies/rsync-0"
  for run in $(seq 1 "$runs"); do
    touch_percent "$src" "$run"
    sync
    backup "$tree"; second+=("$took")
    t=$EPOCHREALTIME
    rsync -a --link-dest="$last_rsync" "$src/" "$work/copies/rsync-$run/"
    sync
    lap rsync_second "$t"
    last_rsync="$work/copies/rsync-$run"
    t=$EPOCHREALTIME; cp -a "$src" "$work/copies/cp2-$run"; sync; lap cp_second "$t"
    # Of the copy just made, not of the source: a link changes the linked file's status
    # change time, and the next backup would then find every source file changed.
    t=$EPOCHREALTIME; cp -al "$work/copies/cp2-$run" "$work/copies/al-$run"; sync; lap links_only "$t"
  done
  # Disk: two backups of an unchanged tree against one.
  backup "$tree"; one=$made
  backup "$tree"; two=$made
  du_one=$(du -s --block-size=1 "$work/server/backups/$one" | cut -f1)
  du_two=$(du -sc --block-size=1 "$work/server/backups/$one" "$work/server/backups/$two" | tail -n 1 | cut -f1)
  # Restore of the newest backup.
  data="$work/server/backups/$two/data"
  restore_once() {
    t=$EPOCHREALTIME
    bctl backups restore --id "$two" --cluster-id "$tree-restored-$run" --description restored \
      --path "$work/trees/$tree-restored-$run" >/dev/null
    lap restore "$t"
  }
  cp_once() {
    t=$EPOCHREALTIME; cp -a "$data" "$work/copies/restore-cp-$run"; sync; lap cp_restore "$t"
  }
  for run in $(seq 1 "$runs"); do
    if (( run % 2 )); then restore_once; cp_once; else cp_once; restore_once; fi
  done
  bytes=$(du -sb "$src" | cut -f1)
  # The tree's copies, backups and restored clusters go before the next tree is measured.
  rm -rf "$work/copies"/* "$work/trees/$tree"-restored-*
  rm -rf "$work/server/backups"/*
  sleep 30
  results+=("$(python3 - "$tree" "$files" "$bytes" "$du_one" "$du_two" "${first[*]}" "${cp_first[*]}" \
    "${second[*]}" "${cp_second[*]}" "${rsync_second[*]}" "${links_only[*]}" "${restore[*]}" \
    "${cp_restore[*]}" <<'PY'
import json, statistics, sys
tree, files, size, du_one, du_two = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
first, cp_first, second, cp_second, rsync_second, links_only, restore, cp_restore = (
    statistics.median(float(x) for x in arg.split()) for arg in sys.argv[6:14])
r = lambda x: round(x, 3)
print(json.dumps({
    "tree": tree, "files": files, "MB": round(size / 1e6, 1),
    "firstSeconds": r(first), "cpASyncSeconds": r(cp_first),
    "firstOverCp": r(first / cp_first), "firstWithin1_25x": first / cp_first <= 1.25,
    "secondSeconds": r(second), "secondCpSeconds": r(cp_second),
    "rsyncLinkDestSeconds": r(rsync_second),
    "secondOverCp": r(second / cp_second), "secondWithin0_1x": second / cp_second <= 0.1,
    "secondOverRsync": r(second / rsync_second), "secondNoSlowerThanRsync": second <= rsync_second,
    "cpAlSyncSeconds": r(links_only), "cpAlOverCp": r(links_only / cp_second),
    "secondOverCpAl": r(second / links_only),
    "restoreSeconds": r(restore), "restoreCpSeconds": r(cp_restore),
    "restoreOverCp": r(restore / cp_restore), "restoreWithin1_3x": restore / cp_restore <= 1.3,
    "diskTwoOverOne": r(du_two / du_one), "diskWithin1_05x": du_two / du_one <= 1.05,
}))
PY
)")
done
python3 -c 'import json, sys; print(json.dumps([json.loads(x) for x in sys.argv[1:]], indent=2))' "${results[@]}"
