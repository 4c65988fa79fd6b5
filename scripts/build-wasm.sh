#!/usr/bin/env bash
# Builds the WebAssembly package of the job form: `scripts/build-wasm.sh`.
#
#   wasm/pkg/      the npm-style package: package.json, backup_wasm.js (ES module glue,
#                  wasm-bindgen `--target web`), backup_wasm_bg.wasm, backup_wasm.d.ts, README
#   wasm/web/pkg/  the same glue, .wasm and types, where the form (wasm/web/) loads them
#
# On a fresh machine it installs what it needs (the wasm32 target, wasm-bindgen-cli at the
# exact version of the wasm-bindgen crate in Cargo.lock, the npm packages of tests/browser
# for binaryen's wasm-opt) and skips every step whose result is already in place, so a second
# run does nothing twice.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh
root=$(pwd)
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

step "wasm: the wasm32-unknown-unknown target"
rustup target list --installed | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown

# The CLI's version must equal the crate's: the glue it writes checks the schema version.
bindgen_version=$(awk '
  /^\[\[package\]\]/ { name = "" }
  /^name = "wasm-bindgen"$/ { name = "wasm-bindgen" }
  name == "wasm-bindgen" && /^version = / { gsub(/version = |"/, ""); print; exit }
' Cargo.lock)
if [[ -z "$bindgen_version" ]]; then
  echo "error: no wasm-bindgen in Cargo.lock; run 'cargo generate-lockfile' first" >&2
  exit 1
fi
step "wasm: wasm-bindgen-cli $bindgen_version"
if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $bindgen_version" ]]; then
  # --locked first, for the dependency versions wasm-bindgen was released with. When one of
  # them is no longer in the registry (yanked), resolve afresh: what must match is the
  # CLI's own version, which --version pins either way.
  cargo install wasm-bindgen-cli --version "$bindgen_version" --locked \
    || cargo install wasm-bindgen-cli --version "$bindgen_version"
else
  echo "already installed"
fi

step "wasm: npm packages of tests/browser (binaryen's wasm-opt, esbuild, playwright-core)"
bash "$root/tests/browser/install.sh"

step "wasm: cargo build --profile wasm-release --target wasm32-unknown-unknown -p backup-wasm"
# The workspace's release profile suits the Lambda binaries (thin LTO, 4 codegen units). The
# browser downloads this module on every visit, so this one build uses its own profile
# (`wasm-release` in the root Cargo.toml): everything it links, the core included, optimised
# for size with whole-program LTO and one codegen unit.
cargo build --profile wasm-release --target wasm32-unknown-unknown -p backup-wasm --no-default-features
target_dir=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
raw="$target_dir/wasm32-unknown-unknown/wasm-release/backup_wasm.wasm"

pkg="$root/wasm/pkg"
web_pkg="$root/wasm/web/pkg"
stamp="$pkg/.built-from"
# What the package is made of: the compiled module, the tools' versions and this script.
wasm_opt="$root/tests/browser/node_modules/.bin/wasm-opt"
esbuild="$root/tests/browser/node_modules/.bin/esbuild"
fingerprint=$(
  {
    sha256sum "$raw" "$root/scripts/build-wasm.sh" "$root/wasm/README.md" | cut -d' ' -f1
    echo "$bindgen_version"
    "$wasm_opt" --version
    "$esbuild" --version
  } | sha256sum | cut -d' ' -f1
)

step "wasm: package in wasm/pkg and wasm/web/pkg"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$fingerprint" && -f "$web_pkg/backup_wasm_bg.wasm" ]]; then
  echo "up to date"
  exit 0
fi

rm -rf "$pkg" "$web_pkg"
wasm-bindgen --target web --out-dir "$pkg" --out-name backup_wasm "$raw"

# -Oz for size, repeated while it still shrinks the module (--converge). The features are
# those rustc enables for wasm32 by default and that every current browser and Node 20
# support. What the optimiser may also assume: the module's own memory starts zeroed (it is
# not imported), and no pointer is below 1 KB (rustc puts the 1 MB stack first, and data
# after it), so constant offsets fold into loads and stores. The producers and
# target-features sections are notes for tools, which the browser does not read.
before=$(stat -c %s "$pkg/backup_wasm_bg.wasm")
"$wasm_opt" -Oz --converge --zero-filled-memory --low-memory-unused \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  --strip-producers --strip-target-features \
  "$pkg/backup_wasm_bg.wasm" -o "$pkg/backup_wasm_bg.wasm"
after=$(stat -c %s "$pkg/backup_wasm_bg.wasm")
echo "wasm-opt -Oz: $before -> $after bytes"

# The glue is downloaded with the module: minified it is about half as large gzipped (3.7 ->
# 2.0 KB). esbuild renames locals only; the exports and the import object's keys (which the
# module's imports name) are left as they are, and the .d.ts documents the exports.
before=$(stat -c %s "$pkg/backup_wasm.js")
"$esbuild" "$pkg/backup_wasm.js" --minify --format=esm --target=es2020 --legal-comments=none \
  --log-level=warning --outfile="$pkg/backup_wasm.min.js"
mv "$pkg/backup_wasm.min.js" "$pkg/backup_wasm.js"
after=$(stat -c %s "$pkg/backup_wasm.js")
echo "esbuild --minify (glue): $before -> $after bytes"

version=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "backup-wasm"))')
cat >"$pkg/package.json" <<EOF
{
  "name": "backup-wasm",
  "version": "$version",
  "description": "The schedule, backup-label and create-job checks of backupctl, compiled from its Rust core to WebAssembly.",
  "license": "Apache-2.0",
  "type": "module",
  "main": "./backup_wasm.js",
  "module": "./backup_wasm.js",
  "types": "./backup_wasm.d.ts",
  "exports": {
    ".": {
      "types": "./backup_wasm.d.ts",
      "default": "./backup_wasm.js"
    },
    "./backup_wasm_bg.wasm": "./backup_wasm_bg.wasm"
  },
  "files": [
    "backup_wasm.js",
    "backup_wasm.d.ts",
    "backup_wasm_bg.wasm",
    "backup_wasm_bg.wasm.d.ts",
    "README.md"
  ],
  "sideEffects": false
}
EOF
cp "$root/wasm/README.md" "$pkg/README.md"

mkdir -p "$web_pkg"
cp "$pkg/backup_wasm.js" "$pkg/backup_wasm_bg.wasm" "$pkg/backup_wasm.d.ts" "$web_pkg/"
echo "$fingerprint" >"$stamp"
ls -l "$pkg"
