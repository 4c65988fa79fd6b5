#!/usr/bin/env bash
# A live PostgreSQL backed up by a real `backupctl serve --allow-commands` (SPEC §15):
# `scripts/test-postgres.sh` (scripts/test.sh runs it after the workspace tests).
#
# 1. Finds PostgreSQL's tools under /usr/lib/postgresql/*/bin, installing `postgresql` and
#    `postgresql-contrib` with apt only when `pg_ctl` is missing.
# 2. `initdb`s a cluster in a temporary directory as a user that is not root (`postgres`, or
#    `nobody`; the current user when the script is not run as root) and starts it on a free
#    127.0.0.1 port. A writer inserts numbered rows 1, 2, 3, … one transaction each.
# 3. Registers a `command` cluster whose backup command is
#    `pg_basebackup -h 127.0.0.1 -p PORT -D "$BACKUP_DIR" -X stream` (run as the database's
#    user), makes three backups while the writer runs, restores each with `backupctl backups
#    restore` into a new directory (a new cluster), starts a second PostgreSQL on it and checks: it starts, its rows are
#    exactly 1..N with no gap, N is at least the count committed before the backup began,
#    and amcheck's `bt_index_check` passes on every index of the table.
# 4. The contrast, printed and never failed on: a plain `directory` copy of the same live
#    data directory (does it start, and what does it hold?), then a cold backup with hooks
#    (pre-hook `pg_ctl stop -m fast`, post-hook `pg_ctl start`), which must hold every row
#    committed before the stop.
# Everything (both PostgreSQL servers, the writer, backupctl serve) is stopped and the
# temporary directory removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }
say() { printf '    %s\n' "$*"; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
step "tools: PostgreSQL"
bin_dir=$(pg_bin)
if [[ -z "$bin_dir" || ! -x "$bin_dir/pg_ctl" ]]; then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql postgresql-contrib >/dev/null
  bin_dir=$(pg_bin)
fi
[[ -x "$bin_dir/pg_ctl" ]] || { echo "no pg_ctl under /usr/lib/postgresql/*/bin" >&2; exit 1; }
say "$("$bin_dir/postgres" --version) in $bin_dir"

# The database's user: never root (PostgreSQL refuses to run as root).
if [[ $(id -u) -eq 0 ]]; then
  if id postgres >/dev/null 2>&1; then db_user=postgres; else db_user=nobody; fi
  as_db() { runuser -u "$db_user" -- "$@"; }
else
  db_user=$(id -un)
  as_db() { "$@"; }
fi
say "the database runs as $db_user"

# shellcheck source=scripts/cargo-env.sh
source "$root/scripts/cargo-env.sh"
cargo build --quiet -p backupctl
backupctl="$target_dir/debug/backupctl"

work=$(mktemp -d)
chmod 755 "$work"
pids=()
pg_dirs=()
stop_all() {
  local dir pid
  for dir in "${pg_dirs[@]}"; do
    as_db "$bin_dir/pg_ctl" -D "$dir" stop -m immediate >/dev/null 2>&1 || true
  done
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap stop_all EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
mkdir -p "$work/pg" "$work/sock"
chown "$db_user" "$work/pg" "$work/sock"
# Starts PostgreSQL on data directory $1 and port $2 (answers non-zero if it does not).
pg_start() {
  as_db "$bin_dir/pg_ctl" -D "$1" -l "$1.log" -w -t 60 \
    -o "-p $2 -k $work/sock -c listen_addresses=127.0.0.1" start >/dev/null
}
sql() { # port, query → unaligned, tuples only
  "$bin_dir/psql" -X -q -h 127.0.0.1 -p "$1" -U postgres -d postgres -At -v ON_ERROR_STOP=1 -c "$2"
}

step "PostgreSQL: initdb, start, a writer committing numbered rows"
live="$work/pg/main"
as_db "$bin_dir/initdb" -D "$live" -U postgres -A trust --no-sync >/dev/null
pg_dirs+=("$live")
port=$(free_port)
pg_start "$live" "$port"
sql "$port" "create extension amcheck;
  create table numbered (id bigint primary key, payload text not null);
  create index numbered_payload on numbered (payload);"
# One transaction per row, in order: when row i is committed every row below it is, so a
# consistent copy holds exactly 1..N.
"$bin_dir/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres >/dev/null 2>&1 <<'SQL' &
DO $$
BEGIN
  FOR i IN 1..100000000 LOOP
    INSERT INTO numbered VALUES (i, md5(i::text) || repeat('x', 100));
    COMMIT;
  END LOOP;
END $$;
SQL
pids+=($!)
committed() { sql "$port" "select count(*) from numbered"; }
for _ in $(seq 1 100); do [[ $(committed) -gt 1000 ]] && break; sleep 0.1; done
say "the writer is at $(committed) rows on port $port"

step "backupctl serve --allow-commands"
"$backupctl" serve --listen 127.0.0.1:0 --data-dir "$work/server" --allow-commands \
  --allowed-root "$work/pg" >"$work/serve.out" 2>"$work/serve.log" &
pids+=($!)
url="" token=""
for _ in $(seq 1 600); do
  url=$(sed -n 's|^listening on \(http://[^ ]*\)$|\1|p' "$work/serve.out")
  token=$(sed -n 's|^sign in: .*#token=\(.*\)$|\1|p' "$work/serve.out")
  [[ -n "$token" ]] && break
  sleep 0.1
done
[[ -n "$token" ]] || { cat "$work/serve.log"; echo "backupctl serve did not start" >&2; exit 1; }
export BACKUPCTL_URL="$url" BACKUPCTL_TOKEN="$token"
bctl() { "$backupctl" "$@"; }
run_as=()
[[ $(id -u) -eq 0 ]] && run_as=(--run-as "$db_user")
# Makes a manual backup of cluster $1 and waits for it: prints its id, fails if defunct.
backup_of() {
  local id status
  id=$(bctl --json backups create --source-cluster-id "$1" --description "$1 {datetime:RFC3339}" | jq -r .id)
  for _ in $(seq 1 1200); do
    status=$(bctl --json backups list --cluster-id "$1" | jq -r --arg id "$id" '.backups[] | select(.id == $id) | .status')
    [[ "$status" != creating ]] && break
    sleep 0.1
  done
  if [[ "$status" != available ]]; then
    bctl --json backups list --cluster-id "$1" | jq --arg id "$id" '.backups[] | select(.id == $id)' >&2
    return 1
  fi
  echo "$id"
}
# Restores backup $1 into the new directory $2 through `backupctl backups restore` (a new
# cluster named after the directory): copied and checked against the manifest, owners and
# modes as recorded.
restore_copy() {
  bctl backups restore --id "$1" --cluster-id "$(basename "$2")" --description "restored $1" \
    --path "$2" >/dev/null
}
# Starts PostgreSQL on restored directory $1 and prints "rows N max M gapless B amcheck A".
inspect_copy() {
  local dir=$1 p count max indexes
  p=$(free_port)
  pg_dirs+=("$dir")
  if ! pg_start "$dir" "$p"; then
    echo "does not start: $(tail -n 2 "$dir.log" | tr '\n' ' ')"
    return 0
  fi
  count=$(sql "$p" "select count(*) from numbered")
  max=$(sql "$p" "select coalesce(max(id), 0) from numbered")
  indexes=$(sql "$p" "select count(*) from (select bt_index_check(i.indexrelid, true)
      from pg_index i where i.indrelid = 'numbered'::regclass) checked" 2>&1) \
    && indexes="passes on $indexes indexes" || indexes="FAILS: $indexes"
  as_db "$bin_dir/pg_ctl" -D "$dir" stop -m fast >/dev/null
  echo "starts; rows $count, max id $max, gap-free $([[ $count == "$max" ]] && echo yes || echo NO); bt_index_check $indexes"
}

step "a command cluster: pg_basebackup -X stream while the writer runs"
bctl clusters register --cluster-id pg --description "Live PostgreSQL" --provider command \
  --path "$live" "${run_as[@]}" --command-timeout 300 \
  --backup-command "$bin_dir/pg_basebackup -h 127.0.0.1 -p $port -U postgres -D \"\$BACKUP_DIR\" -X stream -c fast" >/dev/null
failures=0
for n in 1 2 3; do
  before=$(committed)
  id=$(backup_of pg)
  restored="$work/pg/restored-$n"
  restore_copy "$id" "$restored"
  outcome=$(inspect_copy "$restored")
  say "backup $n ($id): $before rows committed before it began; the restored copy $outcome"
  count=$(sed -n 's/.*rows \([0-9]*\),.*/\1/p' <<<"$outcome")
  if [[ "$outcome" != starts* || "$outcome" != *"gap-free yes"* || "$outcome" != *"bt_index_check passes"* \
        || -z "$count" || "$count" -lt "$before" ]]; then
    echo "    FAILED: backup $n is not a consistent copy holding the $before rows committed before it" >&2
    failures=$((failures + 1))
  fi
done

step "the contrast: a plain directory copy of the same live data directory, no hooks"
bctl clusters register --cluster-id pg-copy --description "Live copy" --provider directory \
  --path "$live" >/dev/null
before=$(committed)
id=$(backup_of pg-copy)
details=$(bctl --json backups list --cluster-id pg-copy | jq -r '.backups[0].details // "none"')
restored="$work/pg/copy-live"
restore_copy "$id" "$restored"
# The copy carries the live server's postmaster.pid, which a start refuses; an operator
# would remove it, so this does too.
rm -f "$restored/postmaster.pid"
say "$before rows committed before the copy began; the backup's details: ${details:0:300}"
say "the restored copy $(inspect_copy "$restored")"
say "(a file-by-file copy of a running database is not a snapshot: files are copied at different instants, so whether it starts, and what it holds, is luck)"

step "the contrast: a cold backup with hooks (pg_ctl stop -m fast / pg_ctl start)"
start_cmd="$bin_dir/pg_ctl -D $live -l $live.log -w -t 60 -o '-p $port -k $work/sock -c listen_addresses=127.0.0.1' start"
stop_cmd="$bin_dir/pg_ctl -D $live -w -t 60 stop -m fast"
if [[ $(id -u) -eq 0 ]]; then
  start_cmd="runuser -u $db_user -- $start_cmd"
  stop_cmd="runuser -u $db_user -- $stop_cmd"
fi
bctl clusters register --cluster-id pg-cold --description "Cold copy" --provider directory \
  --path "$live" --pre-hook "$stop_cmd" --post-hook "$start_cmd >/dev/null" >/dev/null
id=$(backup_of pg-cold)
after=$(committed)
restored="$work/pg/cold"
restore_copy "$id" "$restored"
outcome=$(inspect_copy "$restored")
say "the database is back up after the post-hook with $after rows (the writer stopped with the server)"
say "the restored cold copy $outcome"
count=$(sed -n 's/.*rows \([0-9]*\),.*/\1/p' <<<"$outcome")
if [[ "$outcome" != starts* || "$outcome" != *"gap-free yes"* || "$count" != "$after" ]]; then
  echo "    FAILED: the cold copy does not hold exactly the $after rows committed before the stop" >&2
  failures=$((failures + 1))
fi

step "result"
if ((failures > 0)); then
  echo "$failures check(s) failed; backupctl log:" >&2
  tail -n 40 "$work/serve.log" >&2
  exit 1
fi
say "every command backup restored to a consistent database; the cold backup held every committed row"
