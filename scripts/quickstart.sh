#!/usr/bin/env bash
# Installs what is needed, builds storyreel, and makes a video from the example story with the
# embedded defaults: the deployed state machine run locally, espeak-ng narration, a generated
# background. Outputs go to out/ (a directory laid out like the S3 bucket).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked --bin storyreel
video=$(target/release/storyreel make --story examples/story.txt --out out)
cp "$video" out/sample.mp4
echo "quickstart: open out/sample.mp4 (made as $video; captions and thumbnail beside it)"
