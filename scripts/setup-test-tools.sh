#!/usr/bin/env bash
# Installs the tools the tests use as independent judges and protocol peers, into .tools/
# (nothing global besides Debian packages):
#   moto server (AWS-protocol server for S3, DynamoDB, EventBridge, Step Functions, Lambda),
#   aws-sam-cli (sam validate --lint, sam build), asl-validator (the state machine definition),
#   and through scripts/setup-deploy-tools.sh cargo-lambda and zig (sam build's Rust toolchain).
# Sourced by scripts/test.sh after scripts/setup.sh; puts the tools on PATH.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools"

need_apt=()
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3 python3-venv python3-pip)
command -v npm >/dev/null || need_apt+=(nodejs npm)
command -v curl >/dev/null || need_apt+=(curl)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

venv="$tools/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# Pinned below a major version so a fresh machine gets what was tested.
if ! "$venv/bin/python" -c 'import moto, samcli' 2>/dev/null; then
  "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]>=5.2.5,<6' 'aws-sam-cli>=1.156,<2'
fi
if [ ! -x "$tools/node_modules/.bin/asl-validator" ]; then
  npm install --silent --no-audit --no-fund --prefix "$tools" 'asl-validator@^3'
fi
export PATH="$venv/bin:$tools/node_modules/.bin:$PATH"
# The AWS SDKs and moto need a region and credentials even on loopback; never real ones.
export SAM_CLI_TELEMETRY=0
source "$root/scripts/setup-deploy-tools.sh"
