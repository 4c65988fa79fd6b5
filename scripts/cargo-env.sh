# Sourced by every script that builds: one target directory for the project, outside the
# clone, kept between runs on the same machine (cargo locks it itself, so two runs never
# corrupt it), so a second `scripts/test.sh` or CI run on the same machine rebuilds only what
# changed. A fresh machine starts with an empty one and builds everything.
# `CARGO_TARGET_DIR` set by the caller wins. Scripts read the directory back from
# `cargo metadata` (as `$target_dir`), never assume `target/`.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/backupctl/target}"
target_dir=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export target_dir

# The Python venv of the test tools (moto, cfn-lint, cargo-lambda, ziglang, schemathesis)
# lives beside the target directory, outside the clone, for the same reason: a new clone
# reuses it. It also keeps `cargo lambda`'s path the same from one clone to the next:
# cargo-zigbuild names its linker wrapper after that path, cargo's fingerprints include the
# linker, and a venv inside each clone rebuilt the whole arm64 release build every CI run.
export BACKUPCTL_VENV="${BACKUPCTL_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/backupctl/venv}"
