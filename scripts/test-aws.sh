#!/usr/bin/env bash
# The AWS side's tests, with moto_server as the local AWS endpoint (`scripts/test-aws.sh`;
# scripts/test.sh runs it after the workspace tests).
#
# 1. Installs, once, a Python venv (`~/.cache/backupctl/venv`, or $BACKUPCTL_VENV) with
#    moto[server], cfn-lint, cargo-lambda
#    and ziglang (cargo lambda's cross linker), and the aarch64-unknown-linux-gnu target.
# 2. Starts moto_server on a free 127.0.0.1 port (stopped on exit) and points every AWS
#    client at it through AWS_ENDPOINT_URL only.
# 3. Runs the DynamoDB store and lock contract suite (feature `moto` of backup-aws), the
#    EventBridge and EBS adapter tests, and the Lambda binaries as processes behind a Runtime
#    API emulator (`--include-ignored` runs the tests marked as needing moto).
# 4. cfn-lint on infra/template.yaml and the example stack infra/examples/backup-job.yaml;
#    the least-privilege test (part of backup-aws's tests).
# 5. With LAMBDA_BUILD=1 only: `cargo lambda build --release --arm64` of the three
#    functions, timed. It is what `sam build` and `scripts/bench-aws.sh` do; from an empty
#    cache it is a 30-minute cross build of the AWS SDK on 2 cores (aws-lc-sys for arm64,
#    thin LTO), more than the rest of the test command together, and it tests nothing the
#    host builds of the same code do not: the functions are tested above as processes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

# shellcheck source=scripts/aws-env.sh
source "$root/scripts/aws-env.sh"

step "store and lock contract on DynamoDB, EventBridge and EBS adapters, Lambda functions as processes"
cargo test -p backup-aws -p backup-lambdas --features backup-aws/moto -- --include-ignored --skip bench_

step "backupctl serve --store dynamodb --scheduler eventbridge, as a process; --aws-sigv4 against botocore"
cargo test -p backupctl --test aws --test sigv4 -- --ignored

step "cfn-lint infra/template.yaml infra/examples/backup-job.yaml"
cfn-lint infra/template.yaml infra/examples/backup-job.yaml

if [[ "${LAMBDA_BUILD:-}" == 1 ]]; then
  step "cargo lambda build --release --arm64"
  start=$(date +%s)
  cargo lambda build --release --arm64 -p backup-lambdas
  echo "cargo lambda build took $(($(date +%s) - start)) s"
  for f in backup-runner jobs-api job-resource; do
    ls -l "$target_dir/lambda/$f/bootstrap"
  done
fi

step "AWS tests passed"
