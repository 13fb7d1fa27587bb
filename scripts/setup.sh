#!/usr/bin/env bash
# Installs every system package storyreel needs to build, run and test, on Debian.
# Safe to run again: apt-get skips what is installed.
set -euo pipefail

packages=(
  build-essential pkg-config clang libclang-dev        # a C toolchain and bindgen (x264-sys)
  libx264-dev                                           # the H.264 encoder (GPL-2.0-or-later)
  fonts-league-spartan fonts-dejavu-core                # caption fonts, embedded at build time
  libespeak-ng-dev espeak-ng-data                       # the embedded narration engine
  espeak-ng                                             # the espeak-ng command, for the benchmark
  ffmpeg                                                # the independent judge in tests, the benchmark baseline; its libavcodec decodes backgrounds
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup: need root (or sudo) to install: ${packages[*]}" >&2; exit 1; fi
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "setup: cargo not found: install a Rust toolchain (1.94.1 or newer)" >&2; exit 1; }

# .cargo/config.toml builds x86-64 code for AVX2 CPUs (x86-64-v3); an older x86-64 CPU gets the
# baseline instead of binaries (and build scripts) that would stop on an illegal instruction.
if [ "$(uname -m)" = x86_64 ] && ! grep -qw avx2 /proc/cpuinfo && [ -z "${RUSTFLAGS:-}" ]; then
  echo "setup: this CPU has no AVX2: building for the x86-64 baseline (slower rendering)"
  export RUSTFLAGS="-C target-cpu=x86-64"
fi
