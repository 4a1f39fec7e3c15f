#!/usr/bin/env bash
# Run every test: formatting and lints, dependency advisories, unit tests, the black-box gateway suite (real binaries
# on port 0), the OpenAI Python client, and the console in headless Chromium.
# Installs what is missing first (scripts/setup.sh --test).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n==> %s\n' "$*"; }

scripts/setup.sh --test

say "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -q -- -D warnings

say "dependencies: known advisories, licences, sources (cargo-deny)"
scripts/deny.sh

say "deployment template: cfn-lint and checkov"
infra/check.sh

say "build the binaries and the console site"
cargo build --locked -p gateway -p server
scripts/build-site.sh

say "unit and black-box tests"
cargo test --workspace --locked

say "console in headless Chromium"
(cd tests/browser && node --test)
