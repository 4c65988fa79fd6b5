# Sourced by the directory benchmarks (after scripts/cargo-env.sh).

# bench_setup NAME: builds the release `backupctl` (`$backupctl`, and `bctl` runs it) and
# makes the run's temporary directory `$work`, removed on exit with the server it started.
bench_setup() {
  cargo build --release --locked -p backupctl --no-default-features >&2
  backupctl="$target_dir/release/backupctl"
  work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  server=""
  trap bench_cleanup EXIT
}

bench_cleanup() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}

bctl() { "$backupctl" "$@"; }

# start_server [SERVE OPTIONS]: a release `backupctl serve` on 127.0.0.1 with its data
# directory in "$work/server" and cluster paths allowed under "$work/trees"; waits for its
# sign-in line and exports BACKUPCTL_URL and BACKUPCTL_TOKEN for the CLI.
start_server() {
  "$backupctl" serve --listen 127.0.0.1:0 --data-dir "$work/server" \
    --allowed-root "$work/trees" "$@" >"$work/serve.out" 2>"$work/serve.log" &
  server=$!
  for _ in $(seq 1 300); do
    grep -q '^sign in: ' "$work/serve.out" 2>/dev/null && break
    sleep 0.1
  done
  local url token
  url=$(sed -n 's|^listening on \(http://[^ ]*\)$|\1|p' "$work/serve.out")
  token=$(sed -n 's|^sign in: .*#token=\(.*\)$|\1|p' "$work/serve.out")
  [[ -n "$token" ]] || { cat "$work/serve.log" >&2; echo "backupctl serve did not start" >&2; exit 1; }
  export BACKUPCTL_URL="$url" BACKUPCTL_TOKEN="$token"
}

# The clock is read by the shell itself (bash's EPOCHREALTIME, microseconds), in the shell's
# own process at both ends: an interval starts with `t=$EPOCHREALTIME` and ends with
# `lap NAME "$t"`, which appends the seconds since `t` to the array NAME with integer
# arithmetic, starting nothing. A clock read by a new python3 process charged every interval
# with that process's start-up (tens of milliseconds, hundreds on a loaded machine), more than
# a whole incremental backup takes, and one read in a `$(...)` subshell charged the fork.
lap() {
  local end=${EPOCHREALTIME/[.,]/}
  local -n laps=$1
  local us=$((end - ${2/[.,]/}))
  local fraction
  printf -v fraction '%06d' $((us % 1000000))
  laps+=("$((us / 1000000)).$fraction")
}
