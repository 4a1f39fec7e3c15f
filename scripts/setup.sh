#!/usr/bin/env bash
# Install whatever this machine lacks to build, run and test Golden Path. Idempotent: each step
# checks first and does nothing when the tool is already there.
#   scripts/setup.sh            build and run needs (wasm target, wasm-bindgen)
#   scripts/setup.sh --test     also the test peers (chromium, playwright-core, Python client)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=false
[[ "${1:-}" == "--test" ]] && want_test=true

say() { printf '==> %s\n' "$*"; }
WASM_BINDGEN_VERSION=0.2.130

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if ((${#missing[@]})); then
    say "apt: installing ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Install Debian packages for a command only when the command is missing (a machine may have
# it from elsewhere, e.g. Node.js from its own repository, whose npm conflicts with Debian's).
need() {
  local cmd=$1; shift
  command -v "$cmd" >/dev/null 2>&1 || apt_install "$@"
}

command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }
need cc gcc
need pkg-config pkg-config

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "rustup: adding wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]]; then
  say "cargo: installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 3 minutes, once)"
  cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

if $want_test; then
  need chromium chromium
  need sqlite3 sqlite3   # the SOC browser test sets up its users with it
  need node nodejs
  need npm npm
  python3 -c "import ensurepip, venv" >/dev/null 2>&1 || apt_install python3-venv
  if [[ -f tests/browser/package-lock.json ]] && ! cmp -s tests/browser/package-lock.json tests/browser/node_modules/.package-lock.json 2>/dev/null; then
    say "npm: installing the browser test's packages"
    (cd tests/browser && npm ci --silent --no-audit --no-fund)
  fi
  if ! cmp -s tests/python/requirements.txt .venv-test/requirements.installed 2>/dev/null; then
    say "pip: installing the Python test clients (tests/python/requirements.txt)"
    [[ -x .venv-test/bin/python ]] || python3 -m venv .venv-test
    .venv-test/bin/pip install -q -r tests/python/requirements.txt
    cp tests/python/requirements.txt .venv-test/requirements.installed
  fi
fi
