#!/usr/bin/env bash
# Checks that the Lambda bootstraps `sam build` made run on provided.al2023 as they are:
#   - each needs only glibc's own shared libraries (libx264 is linked in; libespeak-ng is
#     loaded at run time by the CLI only; no C++ runtime),
#   - no symbol needs a glibc newer than 2.34 (Amazon Linux 2023's).
# Usage: scripts/check-bootstraps.sh [DIR]   (DIR defaults to .aws-sam/build)
# Prints one row per function: size, newest GLIBC_x.y version required, NEEDED libraries.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-.aws-sam/build}"
max_glibc="2.34"
functions=(StoryFunction SpeechFunction MarksFunction RenderChunkFunction MergeFunction
  PublishFunction)
# glibc's own libraries (libpthread, libdl, librt and libutil are empty stubs since 2.34).
allowed=" libc.so.6 libm.so.6 libgcc_s.so.1 ld-linux-x86-64.so.2 libpthread.so.0 libdl.so.2"
allowed+=" librt.so.1 libutil.so.1 "

command -v readelf >/dev/null || { echo "check-bootstraps: readelf not found (Debian: binutils)" >&2; exit 1; }

# Prints the newer of two dotted versions.
newer() { printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1; }

failed=0
printf '%-22s %10s  %-8s  %s\n' "function" "size" "glibc" "NEEDED"
for fn in "${functions[@]}"; do
  bin="$dir/$fn/bootstrap"
  if [ ! -f "$bin" ]; then
    printf '%-22s %10s  %-8s  %s\n' "$fn" "-" "-" "MISSING: $bin"
    failed=1
    continue
  fi
  size=$(stat -L -c %s "$bin")
  needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  # Versions the binary requires (.gnu.version_r), not the ones it defines.
  versions=$(readelf -V "$bin" | sed -n 's/.*Name: GLIBC_\([0-9][0-9.]*\).*/\1/p' | sort -u -V)
  newest="none"
  [ -n "$versions" ] && newest=$(tail -n 1 <<<"$versions")
  problems=()
  for lib in $needed; do
    [[ "$allowed" == *" $lib "* ]] || problems+=("needs $lib")
  done
  if [ "$newest" != "none" ] && [ "$(newer "$newest" "$max_glibc")" != "$max_glibc" ]; then
    problems+=("needs GLIBC_$newest > $max_glibc")
  fi
  if readelf -V "$bin" | grep -q 'Name: GLIBC_PRIVATE'; then
    problems+=("needs GLIBC_PRIVATE")
  fi
  if ! readelf -h "$bin" | grep -q 'Machine:.*X86-64'; then
    problems+=("not an x86-64 binary")
  fi
  printf '%-22s %10s  %-8s  %s\n' "$fn" "$(numfmt --to=iec-i --suffix=B "$size")" "$newest" "${needed% }"
  if [ "${#problems[@]}" -gt 0 ]; then
    printf '  FAIL %s:' "$fn" >&2; printf ' %s;' "${problems[@]}" >&2; echo >&2
    failed=1
  fi
done
if [ "$failed" -ne 0 ]; then
  echo "check-bootstraps: FAILED (see above)" >&2
  exit 1
fi
echo "check-bootstraps: all ${#functions[@]} bootstraps need only glibc <= $max_glibc"
