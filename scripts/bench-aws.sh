#!/usr/bin/env bash
# Figures of the AWS deployment (`scripts/bench-aws.sh`), printed as one JSON object:
# - each bootstrap's zipped size (limit 6 MB), from `cargo lambda build --release --arm64`;
# - the runner's cold start through the Runtime API emulator (process start → first
#   answer; limit 100 ms), its init alone, the part of it spent waiting on moto's answers
#   (counted by the proxy in front of moto) and the rest, and a warm invocation's median;
# - the AWS API calls one successful run with nothing to prune makes, counted from the
#   requests that reached moto (limit 8).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
step() { printf '\n==> %s\n' "$*" >&2; }
# shellcheck source=scripts/aws-env.sh
source "$root/scripts/aws-env.sh" >&2

step "cargo lambda build --release --arm64"
start=$(date +%s)
cargo lambda build --release --arm64 -p backup-lambdas >&2
build_seconds=$(($(date +%s) - start))
sizes=()
for f in backup-runner jobs-api job-resource; do
  zip_dir=$(mktemp -d)
  (cd "$target_dir/lambda/$f" && python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED,compresslevel=9); z.write('bootstrap'); z.close()" "$zip_dir/$f.zip")
  sizes+=("\"$f\": $(stat -c %s "$zip_dir/$f.zip")")
  rm -rf "$zip_dir"
done

step "runner figures through the emulator (release build, host architecture)"
line=$(cargo test --release -p backup-lambdas --test functions -- --ignored --exact bench_runner_figures --nocapture 2>/dev/null | grep '^BENCH ' | sed 's/^BENCH //')
python3 - "$line" "$build_seconds" "${sizes[@]}" <<'PY'
import json, sys
figures = json.loads(sys.argv[1])
sizes = json.loads("{" + ", ".join(sys.argv[3:]) + "}")
out = {
    "zippedBootstrapBytes": sizes,
    "zippedBootstrapWithin6MB": all(v <= 6_000_000 for v in sizes.values()),
    "cargoLambdaBuildSeconds": int(sys.argv[2]),
    **figures,
}
out["coldStartWithin100ms"] = figures["runnerColdStartMs"] <= 100
# moto is a Python server: the part of the first invocation spent waiting for its answers
# is not the runner's; the cold start without it is what a Lambda would see from the code.
out["coldStartOwnWithin100ms"] = figures["runnerColdStartOwnMs"] <= 100
out["awsCallsWithin8"] = figures["awsCallsOneRunNothingToPrune"] <= 8
print(json.dumps(out, indent=2))
PY
