#!/usr/bin/env bash
# Size and speed of the job form's checks, beside the JavaScript alternative (cron-parser +
# cronstrue bundled by esbuild): `scripts/bench-wasm.sh`. See tests/browser/bench.mjs for
# what is measured; the figures are printed and written to tests/artifacts/bench.json.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
root=$(pwd)

bash "$root/scripts/build-wasm.sh" >/dev/null
if [[ ! -x /usr/bin/chromium ]]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-dejavu-core
fi
cd "$root/tests/browser"
node bench.mjs
