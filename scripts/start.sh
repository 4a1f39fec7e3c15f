#!/usr/bin/env bash
# Start the whole product on the embedded default: the console on 127.0.0.1:3000 and the
# gateway on 127.0.0.1:8080, data in ./data. Installs what is missing, builds, then runs.
# Pass --release for an optimised build. Extra configuration: GOLDEN_PATH_CONFIG=file.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=()
site=()
if [[ "${1:-}" == "--release" ]]; then profile=(--release); site=(--release); fi

scripts/setup.sh
scripts/build-site.sh "${site[@]}"
cargo build --locked -p gateway -p server "${profile[@]}"
dir=target/debug; [[ ${#profile[@]} -gt 0 ]] && dir=target/release
exec "$dir/server"
