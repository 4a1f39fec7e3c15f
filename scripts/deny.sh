#!/usr/bin/env bash
# Dependency checks with cargo-deny (deny.toml): licences, banned crates and sources always;
# known vulnerabilities (RustSec advisories) against the advisory database.
#
# The database is a git clone under $CARGO_HOME/advisory-dbs. It is fetched from GitHub when
# that is reachable; GOLDEN_PATH_ADVISORY_DB=<path or URL of a clone> names another copy (a
# mirror inside a closed network). With no copy at all the advisory check cannot run: the
# script says so loudly and, with GOLDEN_PATH_REQUIRE_ADVISORIES=1, fails.
set -euo pipefail
cd "$(dirname "$0")/.."

DENY=.venv-test/bin/cargo-deny
[[ -x $DENY ]] || { echo "cargo-deny missing: run scripts/setup.sh --test"; exit 1; }

# The advisory DB's directory name is cargo-deny's hash of its URL (deny.toml's db-urls).
DB="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-3157b0e258782691"
if [[ -n "${GOLDEN_PATH_ADVISORY_DB:-}" ]]; then
  rm -rf "$DB"; mkdir -p "$(dirname "$DB")"
  git clone -q "$GOLDEN_PATH_ADVISORY_DB" "$DB"
elif [[ -d $DB/.git ]]; then
  timeout 60 git -C "$DB" pull -q --ff-only 2>/dev/null || echo "cargo-deny: advisory database not refreshed (offline?); using the copy from $(git -C "$DB" log -1 --format=%cs)"
else
  mkdir -p "$(dirname "$DB")"
  timeout 120 git clone -q --depth 1 https://github.com/rustsec/advisory-db "$DB" 2>/dev/null || rm -rf "$DB"
fi

cargo fetch --locked -q   # every target's crates, so cargo-deny's metadata can run offline
if [[ -d $DB/.git ]]; then
  "$DENY" --offline check --hide-inclusion-graph advisories bans licenses sources
else
  echo "!! cargo-deny: NO advisory database reachable (GitHub is blocked here and no"
  echo "!! GOLDEN_PATH_ADVISORY_DB was given): known-vulnerability check SKIPPED"
  [[ "${GOLDEN_PATH_REQUIRE_ADVISORIES:-0}" == 1 ]] && exit 1
  "$DENY" --offline check --hide-inclusion-graph bans licenses sources
fi
