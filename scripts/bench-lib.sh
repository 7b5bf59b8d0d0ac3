# Shared by the bench-*.sh scripts (sourced): a work directory and the processes
# started, removed and killed at exit; free ports; waiting for a server.
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ping() { for _ in $(seq 100); do curl -fs "http://127.0.0.1:$1/ping" >/dev/null && return 0; sleep 0.1; done; echo "server on $1 did not start" >&2; return 1; }
# Starts a binary that prints "listening on ADDR" (stdout to $1); sets ADDR.
start_listening() {
  local out=$1; shift
  "$@" >"$out" 2>>"$WORK/logs" &
  PIDS+=($!)
  for _ in $(seq 100); do
    ADDR=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$out" | head -1)
    [ -n "$ADDR" ] && return 0
    sleep 0.1
  done
  echo "$* did not start" >&2; return 1
}

# InfluxDB 1.6 (Debian's influxd) with its data in $1 (config and log beside
# it, so `du $1` is the data) on HTTP port $2, no self-monitoring, no
# query log; further [data] settings in $3 (e.g. 'wal-fsync-delay = "0s"').
start_influxd() {
  local dir=$1 port=$2 data=${3:-}
  cat > "$dir.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$(free_port)"
[meta]
  dir = "$dir/meta"
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
  $data
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$port"
  log-enabled = false
[continuous_queries]
  enabled = false
CONF
  influxd -config "$dir.conf" >/dev/null 2>"$dir.log" &
  PIDS+=($!)
  wait_ping "$port"
}

# A loopback cluster in $1 from the release binaries in $B: etcd, sundial-meta,
# three sundial-store (secret "bench"), one sundial-gateway. Sets CLUSTER_META,
# CLUSTER_GW (host:port) and STORE_PIDS; `start_store DIR I` (re)starts store I.
start_store() {
  start_listening "$1/s$2.out" $B/sundial-store --data-dir "$1/s$2" --listen 127.0.0.1:0 \
    --metrics-listen 127.0.0.1:0 --meta "$CLUSTER_META" --shared-secret bench
  STORE_PIDS[$2]=${PIDS[-1]}
}
start_cluster() {
  local d=$1 cp pp
  mkdir -p "$d"
  cp=$(free_port); pp=$(free_port)
  etcd --data-dir "$d/etcd" --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
    --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
    --initial-cluster "default=http://127.0.0.1:$pp" >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$cp/health" >/dev/null && break; sleep 0.1; done
  start_listening "$d/meta.out" $B/sundial-meta --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --etcd-endpoints "http://127.0.0.1:$cp"
  CLUSTER_META=$ADDR
  STORE_PIDS=()
  for i in 1 2 3; do start_store "$d" "$i"; done
  start_listening "$d/gw.out" $B/sundial-gateway --bind 127.0.0.1:0 --meta "$CLUSTER_META" --shared-secret bench --hh-dir "$d/hh"
  CLUSTER_GW=$ADDR
}
