#!/usr/bin/env bash
# Installs every build, test and run dependency of Strata from Debian 12's packages.
# Idempotent: packages already present are skipped quickly. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config clang libclang-rt-14-dev
  librocksdb-dev libzstd-dev libxxhash-dev libssl-dev
  libboost-dev libboost-system-dev
  libabsl-dev libspdlog-dev libfmt-dev libsimdjson-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  rapidjson-dev prometheus-cpp-dev  # only strata_library_bench (bench/library_choice_bench.cc)
  libmemcached-dev memcached
  libavro-dev  # export jobs' Avro files (src/strata/reprocess/avro_file.cc, the only user)
  python3-avro  # the e2e test reads an exported Avro file back (tests/e2e/test_reprocess.py)
  # The distributed deployment (issue 12) and its throwaway test cluster (scripts/cluster.sh):
  ceph-mon ceph-osd radosgw ceph-common librados-dev libradospp-dev uuid-runtime
  librdkafka-dev libcurl4-openssl-dev libpugixml-dev
  libpq-dev postgresql-15  # `strata bench viewing --mode compare` (and its e2e test) runs PostgreSQL 15
  curl procps python3
  chromium  # the dashboard test (tests/e2e/test_gc.py) renders the page headless
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
