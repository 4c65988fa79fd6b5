#!/usr/bin/env bash
# Property-based tests of the HTTP API against its own OpenAPI document (SPEC §17):
# `scripts/test-api-schema.sh` (scripts/test.sh runs it after the workspace tests).
#
# 1. Installs schemathesis, once, into the test tools' Python venv ($BACKUPCTL_VENV,
#    `~/.cache/backupctl/venv` by default; see scripts/cargo-env.sh).
# 2. Starts a real `backupctl serve` on a free 127.0.0.1 port with its token, its data
#    directory and its only `--allowed-root` in a temporary directory (stopped and removed
#    on exit).
# 3. Runs `schemathesis run` on the server's own `/openapi.json`, with the token, against
#    every operation: examples, coverage, fuzzing (at most $MAX_EXAMPLES cases an
#    operation) and stateful sequences along the document's links (create → get → run →
#    delete). Checks: no 5xx, every status, content type and body as documented.
#    A schemathesis hook (scripts/schemathesis_hooks.py) turns some generated cluster paths
#    into fresh directories under the allowed root, so registrations succeed too.
# 4. Keeps the JUnit report in the target directory and prints its path.
#
# MAX_EXAMPLES (default 100) bounds the cases per operation; SCHEMATHESIS_SEED replays a run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

# shellcheck source=scripts/cargo-env.sh
source "$root/scripts/cargo-env.sh"
venv="$BACKUPCTL_VENV"
schemathesis_version=4.32.5
step "tools: schemathesis $schemathesis_version in $venv"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$schemathesis_version"; then
  "$venv/bin/pip" install --quiet "schemathesis==$schemathesis_version"
fi

step "backupctl serve on 127.0.0.1 (token, --allowed-root on a temporary directory)"
cargo build --quiet -p backupctl
work=$(mktemp -d)
server_pid=""
stop() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop EXIT
mkdir -p "$work/allowed"
"$target_dir/debug/backupctl" serve --listen 127.0.0.1:0 --data-dir "$work/data" \
  --allowed-root "$work/allowed" >"$work/stdout" 2>"$work/server.log" &
server_pid=$!
url="" token=""
for _ in $(seq 1 600); do
  if [[ -z "$url" ]]; then
    url=$(sed -n 's|^listening on \(http://[^ ]*\)$|\1|p' "$work/stdout")
  fi
  token=$(sed -n 's|^sign in: .*#token=\(.*\)$|\1|p' "$work/stdout")
  [[ -n "$token" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; echo "backupctl serve did not start" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$token" ]] || { cat "$work/server.log"; echo "backupctl serve printed no sign-in URL in 60 s" >&2; exit 1; }
echo "serving on $url"
# One cluster for the hooks' jobs and manual backups to name.
cluster_id=schema-test
mkdir -p "$work/allowed/$cluster_id"
python3 - "$url" "$token" "$cluster_id" "$work/allowed/$cluster_id" <<'PY'
import json, sys, urllib.request
url, token, cluster, path = sys.argv[1:]
body = json.dumps({"id": cluster, "description": "Schema test", "provider": "directory",
                   "path": path}).encode()
request = urllib.request.Request(
    url + "/mesdb/v1/organizations/default/projects/default/clusters", data=body,
    headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
urllib.request.urlopen(request, timeout=30)
PY

step "schemathesis: every operation of $url/openapi.json"
report_dir="$target_dir/schemathesis"
mkdir -p "$report_dir"
junit="$report_dir/junit.xml"
seed=()
if [[ -n "${SCHEMATHESIS_SEED:-}" ]]; then
  seed=(--seed "$SCHEMATHESIS_SEED")
fi
started=$SECONDS
status=0
# Run from the report directory: schemathesis keeps its examples database and cache in
# `.schemathesis/` under the current directory.
(cd "$report_dir" && ALLOWED_ROOT="$work/allowed" CLUSTER_ID="$cluster_id" \
  SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH="$root/scripts" PYTHONDONTWRITEBYTECODE=1 \
  NO_COLOR=1 "$venv/bin/schemathesis" run "$url/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "${MAX_EXAMPLES:-100}" \
  --workers 2 \
  --request-timeout 30 \
  --report junit --report-junit-path "$junit" \
  "${seed[@]}") || status=$?
echo "schemathesis took $((SECONDS - started)) s; its JUnit report: $junit"
if ((status != 0)); then
  echo "the server's log: (last 50 lines)"
  tail -n 50 "$work/server.log"
  exit "$status"
fi
step "the API answers as its OpenAPI document says"
