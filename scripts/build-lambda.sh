#!/usr/bin/env bash
# Cross-build the gateway's Lambda entry (`gateway-lambda`) for the provided.al2023 runtime:
# an executable named `bootstrap` linked against glibc <= 2.34 (Amazon Linux 2023's), for
# x86_64 and/or arm64 (Graviton), from any Linux host, with cargo-zigbuild (zig as the C
# compiler and linker for aws-lc-sys and the bundled SQLite; no cmake or clang needed).
#
# Usage: scripts/build-lambda.sh [--arch x86_64|arm64|both] [--config FILE] [--smoke]
#   --arch    which architecture(s) to build (default: both)
#   --config  a gateway.toml to put in the zip beside bootstrap (the template's function reads
#             /var/task/gateway.toml); without it the zip holds bootstrap only
#   --smoke   then start each bootstrap against a local fake of the Lambda Runtime API (the
#             embedded backend, a temporary data dir; the other architecture under qemu-user
#             when qemu-aarch64/qemu-x86_64 is on PATH) and check its answers to API Gateway
#             events; with GATEWAY_CLI=path/to/host/gateway also a signed chat completion (as
#             root it apt-installs qemu-user and the target's cross libc when they are missing)
# Output, per architecture, under ${CARGO_TARGET_DIR:-target}/lambda/<arch>/:
#   bootstrap        the executable (aws lambda create-function --runtime provided.al2023
#                    --handler bootstrap --architectures <arch>)
#   gateway-lambda.zip  bootstrap (mode 0755) [+ gateway.toml], the template's GatewayCodeKey
# Installs what it needs on first use, idempotently: the two rustup targets, and zig +
# cargo-zigbuild (pinned, from PyPI) in a venv at ${GOLDEN_PATH_TOOLS_DIR:-target/tools}/zig-venv.
# Release builds of the whole dependency tree: measured ~27 min cold per architecture on 2 busy
# cores, ~11 min after a change to the gateway crate. Not part of scripts/test.sh.
set -euo pipefail

die() { echo "build-lambda.sh: $*" >&2; exit 1; }

# Zig 0.14.1: zig 0.16's `ar` cannot create archives (cc-rs static libraries fail). cargo-zigbuild
# 0.24.0 drops linker arguments zig's lld rejects (e.g. rustc's --fix-cortex-a53-843419).
ZIGLANG_VERSION=0.14.1
CARGO_ZIGBUILD_VERSION=0.24.0
GLIBC=2.34

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

arch=both
config=""
smoke=0
while (($#)); do
  case "$1" in
    --arch) [[ $# -ge 2 ]] || die "--arch needs a value"; arch="$2"; shift 2 ;;
    --arch=*) arch="${1#--arch=}"; shift ;;
    --config) [[ $# -ge 2 ]] || die "--config needs a file"; config="$2"; shift 2 ;;
    --config=*) config="${1#--config=}"; shift ;;
    --smoke) smoke=1; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case "$arch" in
  x86_64|arm64) arches=("$arch") ;;
  both) arches=(x86_64 arm64) ;;
  *) die "--arch must be x86_64, arm64 or both (got '$arch')" ;;
esac
if [[ -n "$config" ]]; then
  [[ -f "$config" ]] || die "--config: no such file: $config"
  config="$(cd "$(dirname "$config")" && pwd)/$(basename "$config")"
fi

rust_target() {
  case "$1" in
    x86_64) echo x86_64-unknown-linux-gnu ;;
    arm64) echo aarch64-unknown-linux-gnu ;;
  esac
}

# ---------------------------------------------------------------- tools (idempotent)
command -v rustup >/dev/null 2>&1 || die "rustup not found on PATH (the rust targets are added with it)"
installed_targets="$(rustup target list --installed)"
for a in "${arches[@]}"; do
  t="$(rust_target "$a")"
  grep -qx "$t" <<<"$installed_targets" || { echo "build-lambda.sh: rustup target add $t"; rustup target add "$t"; }
done

tools="${GOLDEN_PATH_TOOLS_DIR:-$root/target/tools}"
venv="$tools/zig-venv"
pins="ziglang==$ZIGLANG_VERSION cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
if [[ "$(cat "$venv/pins.installed" 2>/dev/null)" != "$pins" ]]; then
  echo "build-lambda.sh: installing $pins into $venv"
  mkdir -p "$tools"
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  # shellcheck disable=SC2086 # $pins is two words on purpose
  "$venv/bin/pip" install -q --disable-pip-version-check $pins
  echo "$pins" >"$venv/pins.installed"
fi
# cargo-zigbuild finds zig as `python -m ziglang` through the venv's python on PATH.
export PATH="$venv/bin:$PATH"
command -v cargo-zigbuild >/dev/null 2>&1 || die "cargo-zigbuild missing from $venv/bin"

# ---------------------------------------------------------------- build
target_dir="${CARGO_TARGET_DIR:-$root/target}"
[[ "$target_dir" = /* ]] || target_dir="$root/$target_dir"
export CARGO_TARGET_DIR="$target_dir"

for a in "${arches[@]}"; do
  t="$(rust_target "$a")"
  out="$target_dir/lambda/$a"
  echo "build-lambda.sh: building gateway-lambda for $t (glibc $GLIBC) into $out"
  start=$SECONDS
  # --locked: exactly the dependency versions the tests ran with. Symbols stripped: a smaller zip
  # is a faster cold start, and panics still print their message.
  CARGO_PROFILE_RELEASE_STRIP=symbols cargo zigbuild --release --locked -p gateway --bin gateway-lambda --target "$t.$GLIBC"
  bin="$target_dir/$t/release/gateway-lambda"
  [[ -x "$bin" ]] || die "expected $bin after the build"

  mkdir -p "$out"
  rm -f "$out/bootstrap" "$out/gateway-lambda.zip"
  cp "$bin" "$out/bootstrap"
  chmod 0755 "$out/bootstrap"

  # The newest glibc symbol version the binary asks for must be one AL2023 has.
  newest="$(objdump -T "$out/bootstrap" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)"
  [[ -z "$newest" || "$(printf '%s\n%s\n' "$newest" "$GLIBC" | sort -V | tail -n1)" == "$GLIBC" ]] \
    || die "$out/bootstrap needs GLIBC_$newest, newer than AL2023's $GLIBC"

  # Zip with Python (no zip package needed): bootstrap executable, fixed timestamps so the same
  # binary gives the same zip.
  python3 - "$out/gateway-lambda.zip" "$out/bootstrap" "$config" <<'PY'
import sys, zipfile
dest, bootstrap, config = sys.argv[1], sys.argv[2], sys.argv[3]
entries = [("bootstrap", bootstrap, 0o755)]
if config:
    entries.append(("gateway.toml", config, 0o644))
with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    for name, path, mode in entries:
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(path, "rb") as f:
            z.writestr(info, f.read())
PY
  size() { stat -c %s "$1"; }
  echo "build-lambda.sh: $a done in $((SECONDS - start)) s: bootstrap $(size "$out/bootstrap") bytes (glibc <= ${newest:-none}), zip $(size "$out/gateway-lambda.zip") bytes${config:+ (with gateway.toml)}"
done

# ---------------------------------------------------------------- smoke test (--smoke)
(( smoke )) || exit 0
host_arch="$(uname -m)"
for a in "${arches[@]}"; do
  bootstrap="$target_dir/lambda/$a/bootstrap"
  runner=()
  case "$a:$host_arch" in
    x86_64:x86_64|arm64:aarch64) ;;
    arm64:*) runner=(qemu-aarch64); sysroot=/usr/aarch64-linux-gnu; cross_libc=libc6-arm64-cross ;;
    x86_64:*) runner=(qemu-x86_64); sysroot=/usr/x86_64-linux-gnu; cross_libc=libc6-amd64-cross ;;
  esac
  if ((${#runner[@]})); then
    # qemu-user runs the binary; the target's glibc and loader come from Debian's cross libc.
    if ! command -v "${runner[0]}" >/dev/null 2>&1 || [[ ! -e "$sysroot/lib/libc.so.6" ]]; then
      if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "build-lambda.sh: apt-get install qemu-user $cross_libc (to run the $a binary)"
        apt-get install -y -q qemu-user "$cross_libc" >/dev/null
      else
        echo "build-lambda.sh: smoke $a skipped: needs ${runner[0]} and $sysroot (apt-get install qemu-user $cross_libc)"
        continue
      fi
    fi
    export QEMU_LD_PREFIX="$sysroot"
  fi
  echo "build-lambda.sh: smoke $a${runner:+ (under ${runner[*]})}"
  python3 "$root/scripts/lambda-smoke.py" -- "${runner[@]}" "$bootstrap" \
    || die "smoke test of $a failed"
  unset QEMU_LD_PREFIX
done
