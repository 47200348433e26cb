#!/usr/bin/env bash
# Command 1 of the README: installs dependencies, builds, and starts `strata serve` on the
# embedded default (data in ./data) with a small demo dataset loaded. Ctrl-C stops it.
# Env: PORT (default 8080), DATA_DIR (default ./data).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8080}
DATA_DIR=${DATA_DIR:-./data}
bash scripts/install-deps.sh
bash scripts/build.sh
./build/apps/strata serve --data-dir "$DATA_DIR" --port "$PORT" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' INT TERM EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 $SERVER 2>/dev/null || { echo "strata serve exited" >&2; exit 1; }
  sleep 0.1
done
./build/apps/strata demo load --server "http://127.0.0.1:$PORT"
cat <<EOT

Strata is serving on http://127.0.0.1:$PORT with demo members 1..20. Try:
  curl -s 'http://127.0.0.1:$PORT/v1/members/1/viewing?limit=5'
  curl -s 'http://127.0.0.1:$PORT/v1/members/1/summary'
  curl -s 'http://127.0.0.1:$PORT/metrics' | grep strata_http_requests_total
Ctrl-C stops the server.
EOT
wait $SERVER
