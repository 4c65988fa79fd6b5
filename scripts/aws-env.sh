# Sourced by scripts/test-aws.sh and scripts/bench-aws.sh: installs the tools once and starts
# moto_server on a free 127.0.0.1 port (stopped when the sourcing script exits), exporting
# AWS_ENDPOINT_URL and test credentials. Expects `root` and `step`.

# shellcheck source=scripts/cargo-env.sh
source "$root/scripts/cargo-env.sh"
venv="$BACKUPCTL_VENV"
step "tools: moto[server], cfn-lint, cargo-lambda, ziglang in $venv"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
need=()
[[ -x "$venv/bin/moto_server" ]] || need+=("moto[server]")
[[ -x "$venv/bin/cfn-lint" ]] || need+=(cfn-lint)
[[ -x "$venv/bin/cargo-lambda" ]] || need+=(cargo-lambda)
"$venv/bin/python" -c 'import ziglang' 2>/dev/null || need+=(ziglang)
if ((${#need[@]})); then
  "$venv/bin/pip" install --quiet "${need[@]}"
fi
export PATH="$venv/bin:$PATH"
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
  || rustup target add aarch64-unknown-linux-gnu

step "moto_server on 127.0.0.1"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
mkdir -p "$target_dir/moto"
moto_log="$target_dir/moto/moto-$port.log"
"$venv/bin/python" "$root/scripts/moto-server.py" -H 127.0.0.1 -p "$port" >"$moto_log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  kill -0 "$moto_pid" 2>/dev/null || { cat "$moto_log"; echo "moto_server did not start" >&2; exit 1; }
  sleep 0.1
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN

