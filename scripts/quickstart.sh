#!/usr/bin/env bash
# Installs what is needed, builds storyreel, and renders a sample video from the example
# story with the embedded defaults (espeak-ng narration, generated background).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked
mkdir -p out
bin=target/release/storyreel
story=examples/story.txt
title=$(head -n 1 "$story")
# Narration with word timings from the embedded engine: the title line, then the body.
"$bin" speak --story "$story" --out-audio out/sample.wav --out-marks out/sample.marks
"$bin" render --audio out/sample.wav --marks out/sample.marks --title "$title" --out out/sample.mp4
echo "quickstart: open out/sample.mp4 (captions: out/sample.srt, out/sample.vtt; thumbnail: out/sample.jpg)"
