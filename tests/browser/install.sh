#!/usr/bin/env bash
# Installs this folder's npm packages exactly as package-lock.json pins them (`npm ci`),
# unless node_modules already holds that lockfile's install: a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")"
want=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.installed-from-lock
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "npm packages up to date"
  exit 0
fi
npm ci --no-audit --no-fund
echo "$want" >"$stamp"
