#!/usr/bin/env bash
# Build the console's browser side into the site root the server serves (Leptos.toml:
# site-root/site-pkg-dir, i.e. target/site/pkg):
#   <output-name>.js, <output-name>_bg.wasm  (wasm-bindgen --target web of `app` with `hydrate`)
#   <output-name>.css                        (style/*.css)
# Usage: scripts/build-site.sh [--release]
#   --release  builds with the `wasm-release` profile and runs wasm-opt when it is on PATH.
# Safe to run again: the pkg directory is rebuilt from scratch each time.
# Build the server separately (cargo build -p server); order does not matter.
set -euo pipefail

die() { echo "build-site.sh: $*" >&2; exit 1; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

release=0
case "${1:-}" in
  "") ;;
  --release) release=1 ;;
  -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
  *) die "unknown argument '$1' (expected --release or nothing)" ;;
esac

command -v wasm-bindgen >/dev/null 2>&1 \
  || die "wasm-bindgen not found on PATH. Install the CLI matching the crate: cargo install wasm-bindgen-cli --version 0.2.130"
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
  || die "the wasm32-unknown-unknown target is missing: rustup target add wasm32-unknown-unknown"

# The CLI must match the wasm-bindgen crate in Cargo.lock exactly.
lock_version="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)"
cli_version="$(wasm-bindgen --version | awk '{print $2}')"
[[ -z "$lock_version" || "$lock_version" == "$cli_version" ]] \
  || die "wasm-bindgen CLI is $cli_version but Cargo.lock has $lock_version: cargo install wasm-bindgen-cli --version $lock_version"

# Site settings from Leptos.toml (LEPTOS_* variables override them, as they do for the server).
toml_value() {
  sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p" Leptos.toml | head -n1
}
output_name="${LEPTOS_OUTPUT_NAME:-$(toml_value output-name)}"
site_root="${LEPTOS_SITE_ROOT:-$(toml_value site-root)}"
pkg_dir_name="${LEPTOS_SITE_PKG_DIR:-$(toml_value site-pkg-dir)}"
[[ -n "$output_name" && -n "$site_root" && -n "$pkg_dir_name" ]] \
  || die "Leptos.toml must set output-name, site-root and site-pkg-dir"
pkg_dir="$site_root/$pkg_dir_name"
target_dir="${CARGO_TARGET_DIR:-target}"

if (( release )); then
  profile_args=(--profile wasm-release)
  profile_dir=wasm-release
else
  profile_args=()
  profile_dir=debug
fi

echo "build-site.sh: building app (hydrate) for wasm32 [$profile_dir]"
# LEPTOS_OUTPUT_NAME is a compile-time input of leptos (it changes the wasm file name the server
# asks for); keep it out of this build so the result never depends on the caller's shell.
env -u LEPTOS_OUTPUT_NAME cargo build -p app --lib \
  --target wasm32-unknown-unknown --no-default-features --features hydrate \
  "${profile_args[@]}"

wasm="$target_dir/wasm32-unknown-unknown/$profile_dir/app.wasm"
[[ -f "$wasm" ]] || die "expected $wasm after the build"

staging="$(mktemp -d "${TMPDIR:-/tmp}/build-site.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

wasm-bindgen --target web --no-typescript --out-dir "$staging" --out-name "$output_name" "$wasm"

# wasm-opt shrinks the release bundle ~3x. Debian 12's binaryen (version 108) emits a module the
# browser rejects (WebAssembly.Table.set fails during hydration), so only a known-good version is
# used: $WASM_OPT, a wasm-opt on PATH of version >= WASM_OPT_MIN, or npm's binaryen installed
# into target/tools. Without one the bundle ships unoptimised (correct, just larger).
WASM_OPT_MIN=125
WASM_OPT_NPM="binaryen@125.0.0"
find_wasm_opt() {
  if [[ -n "${WASM_OPT:-}" ]]; then echo "$WASM_OPT"; return; fi
  local tools="$root/target/tools/node_modules/.bin/wasm-opt"
  if [[ -x "$tools" ]]; then echo "$tools"; return; fi
  if command -v wasm-opt >/dev/null 2>&1; then
    local version
    version="$(wasm-opt --version | awk '{print $3}')"
    if [[ "$version" =~ ^[0-9]+$ ]] && (( version >= WASM_OPT_MIN )); then
      command -v wasm-opt; return
    fi
  fi
  if command -v npm >/dev/null 2>&1; then
    echo "build-site.sh: installing $WASM_OPT_NPM into target/tools (wasm-opt)" >&2
    if npm install --silent --no-audit --no-fund --prefix "$root/target/tools" "$WASM_OPT_NPM" >&2 \
      && [[ -x "$tools" ]]; then
      echo "$tools"
    fi
  fi
}

if (( release )); then
  wasm_opt="$(find_wasm_opt)"
  if [[ -n "$wasm_opt" ]]; then
    echo "build-site.sh: wasm-opt -Oz ($wasm_opt)"
    "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-reference-types \
      --enable-sign-ext --enable-mutable-globals \
      -o "$staging/${output_name}_bg.opt.wasm" "$staging/${output_name}_bg.wasm"
    mv "$staging/${output_name}_bg.opt.wasm" "$staging/${output_name}_bg.wasm"
  else
    echo "build-site.sh: no wasm-opt >= $WASM_OPT_MIN (and no npm to fetch one); shipping the unoptimised wasm"
  fi
fi

shopt -s nullglob
css_files=(style/*.css)
(( ${#css_files[@]} > 0 )) || die "no stylesheet in style/"
cat "${css_files[@]}" > "$staging/$output_name.css"

# A server compiled with LEPTOS_OUTPUT_NAME set asks for <name>.wasm instead of <name>_bg.wasm:
# serve both names (a hard link, no extra space) so hydration never fails on a name mismatch.
ln "$staging/${output_name}_bg.wasm" "$staging/$output_name.wasm"

rm -rf "$pkg_dir"
mkdir -p "$(dirname "$pkg_dir")"
cp -a "$staging" "$pkg_dir"
chmod 755 "$pkg_dir"

echo "build-site.sh: site ready in $pkg_dir:"
ls -l "$pkg_dir"
