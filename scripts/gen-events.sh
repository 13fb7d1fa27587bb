#!/usr/bin/env bash
# Regenerates the step events in events/ from a real run of events/story.json, so every event
# carries the keys, plan and chunk ranges the steps really produce:
#   speech.json, marks.json, render-chunk.json (chunk 0), merge.json, publish.json,
#   publish-failure.json (the Catch's record of a real render-chunk failure).
# story.json, story-prompt.json, drop.json and channel.json are written by hand.
#
# Needs jq and espeak-ng. STORYREEL names the storyreel binary (default: built with cargo).
# tests/events.rs checks that the files still match what the steps produce.
set -euo pipefail

cd "$(dirname "$0")/.."
if [[ -z "${STORYREEL:-}" ]]; then
	cargo build --quiet --bin storyreel
	STORYREEL="${CARGO_TARGET_DIR:-target}/debug/storyreel"
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

invoke() {
	"$STORYREEL" invoke "$1" --event "$2" --dir "$dir/store"
}

story=$(invoke story events/story.json)
jq '{job}' <<<"$story" >events/speech.json
jq '{job}' <<<"$story" >events/marks.json
speech=$(invoke speech events/speech.json)
marks=$(invoke marks events/marks.json)
jq -n --argjson story "$story" --argjson speech "$speech" --argjson marks "$marks" \
	'{job: $story.job, speech: $speech, marks: $marks, chunk: $speech.chunks[0]}' \
	>events/render-chunk.json

n=$(jq '.chunks | length' <<<"$speech")
for ((i = 0; i < n; i++)); do
	jq --argjson i "$i" '.chunk = .speech.chunks[$i]' events/render-chunk.json >"$dir/chunk-$i.json"
	invoke render-chunk "$dir/chunk-$i.json" >"$dir/chunk-$i.out.json"
done
jq -s --argjson story "$story" --argjson speech "$speech" --argjson marks "$marks" \
	'{job: $story.job, speech: $speech, marks: $marks, chunks: .}' "$dir"/chunk-*.out.json \
	>events/merge.json
merged=$(invoke merge events/merge.json)
jq -n --argjson story "$story" --argjson speech "$speech" --argjson marks "$marks" \
	--argjson merged "$merged" \
	'{job: $story.job, speech: $speech, marks: $marks, merged: $merged}' >events/publish.json
invoke publish events/publish.json >/dev/null

# A chunk past the end of the video fails as the Map's Catch would see it: the Lambda error
# payload, as JSON text, is the Cause.
jq '.chunk = {index: 0, start: (.speech.frames + 10), end: (.speech.frames + 20)}' events/render-chunk.json \
	>"$dir/bad-chunk.json"
if error=$(invoke render-chunk "$dir/bad-chunk.json" 2>/dev/null); then
	echo "gen-events: the out-of-range chunk did not fail" >&2
	exit 1
fi
jq --argjson story "$story" \
	'{failure: {job_id: $story.job.job_id, step: "Render chunks",
	  error: {Error: .errorType, Cause: ({errorType, errorMessage} | tojson)}}}' <<<"$error" \
	>events/publish-failure.json
echo "regenerated events/ from a run in $dir" >&2
