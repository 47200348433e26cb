#!/usr/bin/env bash
# Command 2 of the README (and CI): installs dependencies, builds, and runs every test:
# unit and conformance tests, crash tests, end-to-end tests against the real binary, and
# bounded fuzzing runs of the record decoders and of client input.
# Env: FUZZ_SECONDS (default 60), FUZZ_SEED (default 1; 0 = a new random seed per run),
#      CTEST_ARGS (extra ctest arguments).
# The fuzzing run is a gate, so it uses a fixed seed: a fresh clone mutates the same inputs in
# the same order, and a finding reproduces. Exploratory fuzzing (new seeds, longer runs) is
# scripts/fuzz.sh on its own; docs/testing.md says how.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/install-deps.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" ${CTEST_ARGS:-}
bash scripts/fuzz.sh codec "${FUZZ_SECONDS:-60}" -seed="${FUZZ_SEED:-1}"
bash scripts/fuzz.sh input "${FUZZ_SECONDS:-60}" -seed="${FUZZ_SEED:-1}"
bash scripts/fuzz.sh assets "${FUZZ_SECONDS:-60}" -seed="${FUZZ_SEED:-1}"
bash scripts/fuzz.sh auth "${FUZZ_SECONDS:-60}" -seed="${FUZZ_SEED:-1}"
echo "test.sh: all tests passed in $(( $(date +%s) - start )) s"
