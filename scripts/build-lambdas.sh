#!/usr/bin/env bash
# Builds the seven Lambda bootstraps for a deployment as `sam build` does (cargo-lambda and zig,
# no Docker, nothing from AWS), checks that they run on provided.al2023 as they are, and runs
# them through the same Runtime API harness tests as the workspace's own function binaries.
#   scripts/build-lambdas.sh            # tools, sam build, checks, harness tests
#   scripts/build-lambdas.sh --no-test  # tools, sam build, checks
# Afterwards `sam deploy` uploads .aws-sam/build. Called by scripts/test.sh (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
run_tests=1
case "${1:-}" in
  "") ;;
  --no-test) run_tests=0 ;;
  *) echo "usage: scripts/build-lambdas.sh [--no-test]" >&2; exit 2 ;;
esac
source scripts/setup.sh
source scripts/setup-test-tools.sh # and setup-deploy-tools.sh: sam, cargo-lambda, zig

# The Lambda build has its own target directory: another triple, profile and flags than the
# workspace's builds (nothing to share), and no waiting on their build lock.
lambda_target="${STORYREEL_LAMBDA_TARGET_DIR:-$PWD/target-sam}"
start=$SECONDS
echo "build-lambdas: sam build (cargo's output shows only on failure; cold: ~8 min on 2 cores)"
CARGO_TARGET_DIR="$lambda_target" sam build
echo "build-lambdas: sam build took $((SECONDS - start)) s"
scripts/check-bootstraps.sh .aws-sam/build

if [ "$run_tests" -eq 1 ]; then
  start=$SECONDS
  # --workspace: the same feature set as scripts/test.sh's `cargo test --workspace`, so the test
  # binary it built is reused instead of rebuilding dependencies with other features.
  STORYREEL_LAMBDA_BUILD_DIR=.aws-sam/build \
    cargo test --workspace --locked --test tests -- --include-ignored lambda::
  echo "build-lambdas: harness tests on the bootstraps took $((SECONDS - start)) s"
fi
