#!/usr/bin/env bash
# Builds a libFuzzer target with clang, libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer into build-fuzz/, then runs it for a bounded time over its seed
# corpus in tests/fuzz/<target>_corpus (read only) plus a working corpus in
# build-fuzz/<target>-corpus (where new inputs go). docs/testing.md says what each checks.
#
# Targets:
#   codec  src/strata/viewing/codec_fuzz.cc  the viewing record decoders (history blobs,
#          chunk metadata, live rows, summaries, tier state rows, language rows) and the
#          history cursor
#   input  src/strata/server/input_fuzz.cc   client input (event bodies, bucket policies,
#          Range headers, path segments) and the media and collector rows read from disk
#   assets src/strata/assets/assets_fuzz.cc  asset, history and outbox rows, index keys (round trip
#          and order), page cursors, where-conditions, asset ids, JSON payloads and schemas
#   auth   src/strata/auth/auth_fuzz.cc      Authorization header values (Bearer, Basic and its
#          base64), API key tokens, scope lists
#
# Usage: scripts/fuzz.sh TARGET [SECONDS] [extra libFuzzer flags...]   (SECONDS defaults to 60)
#        STRATA_FUZZ_JOBS=N runs N fuzzing processes side by side (default 1).
#
# Exit status: 0 if the run ended without a finding; non-zero if the build failed or the fuzzer
# found a crash, sanitizer report, timeout or out-of-memory, whose input is then saved as
# build-fuzz/<target>-artifacts/crash-* (replay: build-fuzz/<target>_fuzz <that file>).
#
# To regenerate a seed corpus after a format change:
#   STRATA_CODEC_FUZZ_WRITE_SEEDS=tests/fuzz/codec_corpus build-fuzz/codec_fuzz
#   STRATA_INPUT_FUZZ_WRITE_SEEDS=tests/fuzz/input_corpus build-fuzz/input_fuzz
#   STRATA_ASSETS_FUZZ_WRITE_SEEDS=tests/fuzz/assets_corpus build-fuzz/assets_fuzz
#   STRATA_AUTH_FUZZ_WRITE_SEEDS=tests/fuzz/auth_corpus build-fuzz/auth_fuzz
set -euo pipefail

cd "$(dirname "$0")/.."
target="${1:-}"
seconds="${2:-60}"
if [[ $# -gt 2 ]]; then shift 2; else shift $#; fi
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 codec|input|assets|auth [SECONDS] [libFuzzer flags...]" >&2
  exit 2
fi

case "$target" in
  codec)
    sources=(src/strata/viewing/codec.cc src/strata/viewing/segments.cc
             src/strata/viewing/summary.cc src/strata/viewing/codec_fuzz.cc)
    # Abseil's status and hash-map libraries (Debian ships pkg-config files for each).
    libs="$(pkg-config --libs absl_status absl_statusor absl_flat_hash_map absl_strings) -lzstd"
    ;;
  input)
    sources=(src/strata/server/viewing_json.cc src/strata/server/media_json.cc
             src/strata/server/json_writer.cc src/strata/viewing/validation.cc
             src/strata/media/validation.cc src/strata/media/checksums.cc
             src/strata/media/rows.cc src/strata/gc/records.cc src/strata/scrub/records.cc
             src/strata/server/input_fuzz.cc)
    libs="$(pkg-config --libs absl_status absl_statusor absl_strings absl_str_format simdjson \
            libcrypto libxxhash)"
    ;;
  assets)
    sources=(src/strata/assets/json.cc src/strata/assets/asset_id.cc
             src/strata/assets/index_key.cc src/strata/assets/schema.cc
             src/strata/assets/where.cc src/strata/assets/rows.cc
             src/strata/assets/assets_fuzz.cc)
    libs="$(pkg-config --libs absl_status absl_statusor simdjson)"
    ;;
  auth)
    sources=(src/strata/auth/api_key.cc src/strata/auth/auth_fuzz.cc)
    libs="$(pkg-config --libs absl_status absl_statusor absl_strings libcrypto)"
    ;;
  *)
    echo "usage: $0 codec|input|assets|auth [SECONDS] [libFuzzer flags...]" >&2
    exit 2
    ;;
esac

out=build-fuzz
mkdir -p "$out/$target-corpus" "$out/$target-artifacts"
cxx="${CXX_FUZZ:-clang++}"

echo "building $out/${target}_fuzz with $cxx ..."
# shellcheck disable=SC2086  # libs is a list of flags
"$cxx" -std=c++20 -O1 -g -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -D_GLIBCXX_ASSERTIONS -Wall -Wextra -Wno-unused-parameter -Werror \
  -Isrc "${sources[@]}" -o "$out/${target}_fuzz" $libs

jobs="${STRATA_FUZZ_JOBS:-1}"
parallel=()
if [[ "$jobs" -gt 1 ]]; then parallel=(-jobs="$jobs" -workers="$jobs"); fi

echo "fuzzing $target for ${seconds}s ..."
# libFuzzer exits non-zero on any finding; set -e passes that on.
"$out/${target}_fuzz" \
  -max_total_time="$seconds" \
  -max_len=16384 \
  -timeout=10 \
  -rss_limit_mb=2048 \
  -use_value_profile=1 \
  -print_final_stats=1 \
  -artifact_prefix="$out/$target-artifacts/" \
  "${parallel[@]}" \
  "$@" \
  "$out/$target-corpus" "tests/fuzz/${target}_corpus"
echo "$target fuzzing: no findings in ${seconds}s"
