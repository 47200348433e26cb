#!/usr/bin/env bash
# Builds the viewing-codec fuzzer (src/strata/viewing/codec_fuzz.cc) with clang, libFuzzer,
# AddressSanitizer and UndefinedBehaviorSanitizer into build-fuzz/, then runs it for a bounded
# time over the seed corpus in tests/fuzz/codec_corpus (read only) plus a working corpus in
# build-fuzz/codec-corpus (where new inputs go).
#
# Usage: scripts/fuzz-codec.sh [SECONDS] [extra libFuzzer flags...]   (SECONDS defaults to 60)
#        STRATA_FUZZ_JOBS=N runs N fuzzing processes side by side (default 1).
#
# Exit status: 0 if the run ended without a finding; non-zero if the build failed or the fuzzer
# found a crash, sanitizer report, timeout or out-of-memory, whose input is then saved as
# build-fuzz/codec-artifacts/crash-* (replay: build-fuzz/codec_fuzz <that file>).
#
# To regenerate the seed corpus after a format change:
#   STRATA_CODEC_FUZZ_WRITE_SEEDS=tests/fuzz/codec_corpus build-fuzz/codec_fuzz
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${1:-60}"
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 [SECONDS] [libFuzzer flags...]" >&2
  exit 2
fi

out=build-fuzz
mkdir -p "$out/codec-corpus" "$out/codec-artifacts"
cxx="${CXX_FUZZ:-clang++}"

# Abseil's status and hash-map libraries (Debian ships pkg-config files for each).
absl_libs="$(pkg-config --libs absl_status absl_statusor absl_flat_hash_map)"

echo "building $out/codec_fuzz with $cxx ..."
# shellcheck disable=SC2086  # absl_libs is a list of flags
"$cxx" -std=c++20 -O1 -g -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -D_GLIBCXX_ASSERTIONS -Wall -Wextra -Wno-unused-parameter -Werror \
  -Isrc src/strata/viewing/codec.cc src/strata/viewing/segments.cc src/strata/viewing/summary.cc \
  src/strata/viewing/codec_fuzz.cc \
  -o "$out/codec_fuzz" $absl_libs -lzstd

jobs="${STRATA_FUZZ_JOBS:-1}"
parallel=()
if [[ "$jobs" -gt 1 ]]; then parallel=(-jobs="$jobs" -workers="$jobs"); fi

echo "fuzzing for ${seconds}s ..."
# libFuzzer exits non-zero on any finding; set -e passes that on.
"$out/codec_fuzz" \
  -max_total_time="$seconds" \
  -max_len=16384 \
  -timeout=10 \
  -rss_limit_mb=2048 \
  -use_value_profile=1 \
  -print_final_stats=1 \
  -artifact_prefix="$out/codec-artifacts/" \
  "${parallel[@]}" \
  "$@" \
  "$out/codec-corpus" tests/fuzz/codec_corpus
echo "codec fuzzing: no findings in ${seconds}s"
