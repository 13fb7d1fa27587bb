#!/usr/bin/env bash
# Installs what is needed and runs every check CI runs: formatting, lints, all tests
# (including the ignored heavy ones) and the Lambda build (scripts/build-lambdas.sh). Ends with
# one summary line over all test binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
source scripts/setup-test-tools.sh
# Checks no one here wrote: the state machine definition and the SAM template.
asl-validator --json-path statemachine/video.asl.json
sam validate --lint --region us-east-1 --template template.yaml
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked -- --include-ignored 2>&1 | tee "$log"
# The deployable Lambdas: `sam build` (cargo-lambda, zig), their libraries and glibc version,
# then the Runtime API harness tests again, on the bootstraps as Lambda runs them.
scripts/build-lambdas.sh 2>&1 | tee -a "$log"
awk '/^test result:/ { p += $4; f += $6 } END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
