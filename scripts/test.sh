#!/usr/bin/env bash
# Command 2 of the README (and CI): installs dependencies, builds, and runs every test:
# unit and conformance tests, crash tests, end-to-end tests against the real binary, and a
# bounded fuzzing run of the history decoder.
# Env: FUZZ_SECONDS (default 60), CTEST_ARGS (extra ctest arguments).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/install-deps.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" ${CTEST_ARGS:-}
bash scripts/fuzz-codec.sh "${FUZZ_SECONDS:-60}"
echo "test.sh: all tests passed in $(( $(date +%s) - start )) s"
