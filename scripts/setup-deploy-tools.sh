#!/usr/bin/env bash
# Installs what `sam build` needs to build the Lambda bootstraps without Docker, into the tool
# venv .tools/venv (nothing global): cargo-lambda and zig (its linker, which targets Amazon
# Linux 2023's glibc 2.34), both from PyPI, next to aws-sam-cli from setup-test-tools.sh.
# Sourced by scripts/setup-test-tools.sh; puts the tools on PATH and sets ZIG_LIB_DIR.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.tools/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"

# sam's rust-cargolambda build method needs no beta-feature opt-in (or prompt) from 1.156 on.
sam_ok() {
  "$venv/bin/python" - <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
v = tuple(int(p) for p in version("aws-sam-cli").split(".")[:2])
sys.exit(0 if v >= (1, 156) else 1)
EOF
}
# Pinned below the next breaking version so a fresh machine gets what was tested:
# cargo-lambda 1.9 drives zig through cargo-zigbuild 0.23, which knows zig up to 0.17.
if ! sam_ok || [ ! -x "$venv/bin/cargo-lambda" ] \
  || ! "$venv/bin/python" -c 'import ziglang' 2>/dev/null; then
  "$venv/bin/pip" install -q --disable-pip-version-check \
    'aws-sam-cli>=1.156,<2' 'cargo-lambda>=1.9.2,<2' 'ziglang>=0.17,<0.18'
fi
command -v readelf >/dev/null || { echo "setup: readelf not found (Debian: binutils)" >&2; exit 1; }
export PATH="$venv/bin:$PATH"

# zig prints its header directories relative to the current directory when they lie under it
# (.tools is under the project root, where `sam build` runs cargo-lambda); cargo-zigbuild hands
# them to bindgen, which runs x264-sys's build script in another directory and finds nothing.
# The same directory named through /proc/self/root is not under the current directory's path,
# so zig keeps it absolute.
zig_lib="$("$venv/bin/python" -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "lib"))')"
export ZIG_LIB_DIR="/proc/self/root$zig_lib"
export SAM_CLI_TELEMETRY=0
