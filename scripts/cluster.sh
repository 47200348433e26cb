#!/usr/bin/env bash
# A throwaway distributed deployment on loopback, for tests, benchmarks and the local demo:
# Ceph (one monitor, one memstore OSD, radosgw for S3) and memcached. Nothing is kept: the OSD
# holds its data in RAM and `stop` removes the directory.
#
#   bash scripts/cluster.sh start [DIR]   starts everything, writes DIR/env, prints it
#   bash scripts/cluster.sh stop  [DIR]   stops what DIR/*.pid names, removes DIR
#   bash scripts/cluster.sh status [DIR]
#
# DIR defaults to /tmp/strata-cluster. `source DIR/env` gives the clients what they need:
#   CEPH_CONF                    librados (the keyring path is inside the conf)
#   STRATA_S3_ENDPOINT, STRATA_S3_ACCESS_KEY, STRATA_S3_SECRET_KEY, STRATA_S3_REGION
#   STRATA_MEMCACHED             host:port
#   STRATA_KAFKA_BROKERS         host:port,... (strata-kafka-mock: librdkafka's mock cluster)
#   STRATA_KAFKA_MOCK_CONTROL    host:port of the helper's control port (tests create topics)
# The Kafka helper is $STRATA_KAFKA_MOCK, else build/tests/tools/strata-kafka-mock; when it is
# not built (no librdkafka-dev), the cluster starts without Kafka.
# Ports come from the environment (CEPH_MON_PORT, RGW_PORT, MEMCACHED_PORT) or free ones are
# picked, so two clusters (two test runs) can live side by side. Needs root, as the Ceph
# daemons are started directly, without systemd.
set -euo pipefail

cmd=${1:-}
DIR=${2:-/tmp/strata-cluster}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop_cluster() {
  [ -d "$DIR" ] || return 0
  local pids=()
  for f in "$DIR"/*.pid; do
    [ -e "$f" ] || continue
    local pid
    pid=$(cat "$f" 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && pids+=("$pid")
  done
  # Bounded wait, then force.
  for _ in $(seq 1 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "${DIR:?}"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "cluster: $what did not come up within ${seconds}s; logs in $DIR/log" >&2
      return 1
    fi
    sleep 0.2
  done
}

start_cluster() {
  for tool in ceph-mon ceph-osd radosgw ceph-authtool monmaptool memcached uuidgen; do
    command -v "$tool" >/dev/null || {
      echo "cluster: $tool is missing; run: bash scripts/install-deps.sh" >&2
      exit 1
    }
  done
  stop_cluster
  mkdir -p "$DIR"/{mon,osd,rgw,log}
  local t0=$SECONDS
  local mon_port=${CEPH_MON_PORT:-$(free_port)}
  local rgw_port=${RGW_PORT:-$(free_port)}
  local mc_port=${MEMCACHED_PORT:-$(free_port)}
  local access=${STRATA_S3_ACCESS_KEY:-STRATATESTACCESS0001}
  local secret=${STRATA_S3_SECRET_KEY:-stratatestsecret00000000000000000000001}
  local fsid
  fsid=$(uuidgen)
  export CEPH_CONF=$DIR/ceph.conf

  # One OSD with memstore (RAM), replication 1, few placement groups; cephx on, so radosgw's
  # default secure mon connection works; a short paxos interval so each map change (OSD
  # boot, every pool radosgw creates) takes milliseconds, not a second.
  cat >"$CEPH_CONF" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $DIR/\$name.keyring
run dir = $DIR
admin socket = $DIR/\$name.asok
pid file = $DIR/\$name.pid
log file = $DIR/log/\$name.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 2000
mon data avail warn = 1
mon data avail crit = 1
mon warn on insecure global id reclaim allowed = false
paxos propose interval = 0.01
paxos min wait = 0.001
[mon.a]
mon data = $DIR/mon
[osd.0]
osd data = $DIR/osd
osd objectstore = memstore
memstore device bytes = ${MEMSTORE_BYTES:-8589934592}
osd class load list = *
osd class default list = *
[client.rgw.a]
# tcp_nodelay: without it radosgw writes an answer's headers and body as two segments with
# Nagle on, so the body waits for the client's delayed ACK (~40 ms per small GET or PUT).
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw data = $DIR/rgw
rgw dns name = 127.0.0.1
# Tests use small multipart parts (S3's own minimum is 5 MiB).
rgw multipart min part size = 4096
EOF

  {
    ceph-authtool --create-keyring "$DIR/mon.a.keyring" --gen-key -n mon. --cap mon 'allow *'
    ceph-authtool --create-keyring "$DIR/client.admin.keyring" --gen-key -n client.admin \
      --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *'
    ceph-authtool --create-keyring "$DIR/osd.0.keyring" --gen-key -n osd.0 \
      --cap mon 'allow profile osd' --cap osd 'allow *'
    ceph-authtool --create-keyring "$DIR/client.rgw.a.keyring" --gen-key -n client.rgw.a \
      --cap mon 'allow rw' --cap osd 'allow rwx'
    for name in client.admin osd.0 client.rgw.a; do
      ceph-authtool "$DIR/mon.a.keyring" --import-keyring "$DIR/$name.keyring"
    done
    monmaptool --create --fsid "$fsid" --addv a "v2:127.0.0.1:$mon_port" "$DIR/monmap"
  } >"$DIR/log/setup.log" 2>&1

  ceph-mon --id a --mkfs --monmap "$DIR/monmap" --keyring "$DIR/mon.a.keyring" \
    >>"$DIR/log/setup.log" 2>&1
  ceph-mon --id a >>"$DIR/log/setup.log" 2>&1

  local osd_uuid
  osd_uuid=$(uuidgen)
  timeout 30 ceph osd new "$osd_uuid" 0 >>"$DIR/log/setup.log" 2>&1
  ceph-osd --id 0 --mkfs --osd-uuid "$osd_uuid" >>"$DIR/log/setup.log" 2>&1
  ceph-osd --id 0 >>"$DIR/log/setup.log" 2>&1
  wait_for 30 "the OSD" sh -c 'timeout 5 ceph osd stat | grep -q "1 up"'

  # radosgw forks only once it reaches the monitor: bound its start, then poll its port.
  timeout 60 radosgw --id rgw.a >>"$DIR/log/setup.log" 2>&1
  wait_for 60 "radosgw" curl -fs -o /dev/null "http://127.0.0.1:$rgw_port/"
  timeout 30 radosgw-admin user create --uid=strata-test --display-name="Strata tests" \
    --access-key="$access" --secret="$secret" >>"$DIR/log/setup.log" 2>&1

  memcached -l 127.0.0.1 -p "$mc_port" -U 0 -m 256 -d -P "$DIR/memcached.pid" \
    -u "$(id -un)" >>"$DIR/log/setup.log" 2>&1
  wait_for 10 "memcached" bash -c "exec 3<>/dev/tcp/127.0.0.1/$mc_port"

  local kafka_mock=${STRATA_KAFKA_MOCK:-$(cd "$(dirname "$0")/.." && pwd)/build/tests/tools/strata-kafka-mock}
  if [ -x "$kafka_mock" ]; then
    nohup "$kafka_mock" --brokers 3 --env-file "$DIR/kafka.env" --pid-file "$DIR/kafka-mock.pid" \
      >>"$DIR/log/kafka-mock.log" 2>&1 </dev/null &
    wait_for 10 "strata-kafka-mock" test -s "$DIR/kafka.env"
  else
    echo "cluster: $kafka_mock not built; starting without Kafka" >&2
    : >"$DIR/kafka.env"
  fi

  cat >"$DIR/env" <<EOF
export CEPH_CONF=$CEPH_CONF
export STRATA_S3_ENDPOINT=http://127.0.0.1:$rgw_port
export STRATA_S3_ACCESS_KEY=$access
export STRATA_S3_SECRET_KEY=$secret
export STRATA_S3_REGION=us-east-1
export STRATA_MEMCACHED=127.0.0.1:$mc_port
EOF
  cat "$DIR/kafka.env" >>"$DIR/env"
  cat "$DIR/env"
  echo "cluster: up in $((SECONDS - t0)) s in $DIR (stop: bash scripts/cluster.sh stop $DIR)" >&2
}

case "$cmd" in
  start) start_cluster ;;
  stop) stop_cluster ;;
  status)
    for f in "$DIR"/*.pid; do
      [ -e "$f" ] || { echo "cluster: nothing running in $DIR"; exit 1; }
      pid=$(cat "$f")
      if kill -0 "$pid" 2>/dev/null; then echo "$(basename "$f" .pid) $pid up"; else echo "$(basename "$f" .pid) $pid down"; fi
    done
    ;;
  *)
    echo "usage: bash scripts/cluster.sh start|stop|status [DIR]" >&2
    exit 2
    ;;
esac
