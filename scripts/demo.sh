#!/usr/bin/env bash
# Command 1 of the README: installs dependencies, builds, and starts `strata serve` on the
# embedded default (data in ./data) with a small demo dataset loaded. Ctrl-C stops it.
#
#   bash scripts/demo.sh                 embedded: RocksDB, local files, in-process caches
#   bash scripts/demo.sh --distributed   (optional third command) starts a throwaway cluster
#                                        (scripts/cluster.sh) and Strata on every distributed
#                                        backend this build has; Ctrl-C stops both
#
# Env: PORT (default 8080), DATA_DIR (default ./data, ./data-distributed with --distributed),
#      CLUSTER_DIR (default /tmp/strata-demo-cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
DISTRIBUTED=0
for arg in "$@"; do
  case "$arg" in
    --distributed) DISTRIBUTED=1 ;;
    *) echo "usage: bash scripts/demo.sh [--distributed]" >&2; exit 2 ;;
  esac
done
PORT=${PORT:-8080}
if [ $DISTRIBUTED -eq 1 ]; then
  DATA_DIR=${DATA_DIR:-./data-distributed}
else
  DATA_DIR=${DATA_DIR:-./data}
fi
CLUSTER_DIR=${CLUSTER_DIR:-/tmp/strata-demo-cluster}
bash scripts/install-deps.sh
bash scripts/build.sh

SERVE_ARGS=(--data-dir "$DATA_DIR" --port "$PORT")
if [ $DISTRIBUTED -eq 1 ]; then
  bash scripts/cluster.sh start "$CLUSTER_DIR"
  # shellcheck disable=SC1091
  source "$CLUSTER_DIR/env"
  mkdir -p "$DATA_DIR"
  # One config section per storage interface: rows on Ceph RADOS, object bytes on S3
  # (radosgw; keys from STRATA_S3_ACCESS_KEY / STRATA_S3_SECRET_KEY, exported above), the
  # viewing cache in memcached, work queues on Kafka (librdkafka's mock broker from
  # scripts/cluster.sh, which creates topics through its control port:
  # STRATA_KAFKA_MOCK_CONTROL, exported above).
  cat >"$DATA_DIR/strata.toml" <<EOT
[rows]
backend = "rados"
ceph_conf = "$CEPH_CONF"
pool_prefix = "strata-demo"
[blobs]
backend = "s3"
endpoint = "$STRATA_S3_ENDPOINT"
bucket = "strata-demo"
create_bucket = true
[queue]
backend = "kafka"
brokers = ["${STRATA_KAFKA_BROKERS//,/\",\"}"]
[cache]
backend = "memcached"
servers = ["$STRATA_MEMCACHED"]
EOT
  SERVE_ARGS+=(--config "$DATA_DIR/strata.toml")
fi

./build/apps/strata serve "${SERVE_ARGS[@]}" &
SERVER=$!
cleanup() {
  kill $SERVER 2>/dev/null || true
  wait $SERVER 2>/dev/null || true
  if [ $DISTRIBUTED -eq 1 ]; then bash scripts/cluster.sh stop "$CLUSTER_DIR"; fi
}
trap cleanup INT TERM EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 $SERVER 2>/dev/null || { echo "strata serve exited" >&2; exit 1; }
  sleep 0.1
done
./build/apps/strata demo load --server "http://127.0.0.1:$PORT"
if [ $DISTRIBUTED -eq 1 ]; then
  echo
  echo "Backends: $(tr "\n" " " <"$DATA_DIR/strata.toml"); cluster in $CLUSTER_DIR"
fi
cat <<EOT

Strata is serving on http://127.0.0.1:$PORT with demo members 1..20. Try:
  curl -s 'http://127.0.0.1:$PORT/v1/members/1/viewing?limit=5'
  curl -s 'http://127.0.0.1:$PORT/v1/members/1/summary'
  curl -s 'http://127.0.0.1:$PORT/metrics' | grep strata_http_requests_total
Ctrl-C stops the server.
EOT
wait $SERVER
