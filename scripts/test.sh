#!/usr/bin/env bash
# Installs what is needed and runs every check CI runs: formatting, lints, and all tests
# (including the ignored heavy ones).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked -- --include-ignored
