#!/usr/bin/env bash
# The TSBS devops query set (sundial-qbench: single-groupby-1-1-1,
# single-groupby-5-1-12, cpu-max-all-8, double-groupby-1, high-cpu-1, lastpoint,
# groupby-orderby-limit) against the all-in-one Sundial, a loopback Sundial
# cluster (three stores, replication 2, one gateway) and InfluxDB 1.6 (Debian's
# `influxdb`), all loaded with the same TSBS cpu-only data in this run. Answers
# are compared first; then median and p99 latency per query type at client
# concurrency 1 and 8.
#
#   HOSTS=100 HOURS=24 ROUNDS=20 scripts/bench-query.sh
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${HOSTS:-100}
HOURS=${HOURS:-24}
ROUNDS=${ROUNDS:-20}
. scripts/bench-lib.sh

cargo build --release -q --bin sundial --bin sundial-load --bin sundial-qbench \
  --bin sundial-meta --bin sundial-store --bin sundial-gateway
B=target/release
BATCHES=$(( HOSTS * HOURS * 360 / 5000 ))
# Every server gets the same points: HOURS of data ending a day ago, from the hour.
START=$(( ($(date +%s) / 3600 - HOURS - 24) * 3600 * 1000000000 ))
LOAD="$B/sundial-load --batches $BATCHES --batch 5000 --connections 4 --hosts $HOSTS --start-ns $START"
HOURS=$(( BATCHES * 5000 / HOSTS / 360 ))
SERVERS=()

# All-in-one, restarted once loaded so the data is in files as it would be.
P=$(free_port)
$B/sundial run --data-dir "$WORK/sundial" --bind "127.0.0.1:$P" >/dev/null 2>>"$WORK/logs" &
PIDS+=($!)
wait_ping "$P"
$LOAD --url "http://127.0.0.1:$P" --label sundial
kill -TERM "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
$B/sundial run --data-dir "$WORK/sundial" --bind "127.0.0.1:$P" >/dev/null 2>>"$WORK/logs" &
PIDS+=($!)
wait_ping "$P"
SERVERS+=(--server "sundial=http://127.0.0.1:$P")

# InfluxDB 1.6.
if command -v influxd >/dev/null; then
  IP=$(free_port)
  start_influxd "$WORK/influx" "$IP"
  $LOAD --url "http://127.0.0.1:$IP" --label influxdb-1.6
  SERVERS+=(--server "influxdb-1.6=http://127.0.0.1:$IP")
else
  echo "influxd not installed (apt-get install influxdb): Sundial alone"
fi

# A loopback cluster, replication 2; stores restarted once loaded.
if [ "${CLUSTER:-1}" = 1 ] && command -v etcd >/dev/null; then
  d="$WORK/cluster"
  start_cluster "$d"
  gw=$CLUSTER_GW
  curl -fs -XPOST "http://$gw/query" --data-urlencode "q=CREATE DATABASE bench WITH REPLICATION 2" >/dev/null
  $LOAD --url "http://$gw" --label cluster-rf2
  for i in 1 2 3; do
    kill -TERM "${STORE_PIDS[$i]}"; wait "${STORE_PIDS[$i]}" 2>/dev/null || true
    start_store "$d" "$i"
  done
  sleep 2
  SERVERS+=(--server "cluster=http://$gw")
fi

$B/sundial-qbench "${SERVERS[@]}" --start-ns "$START" --hosts "$HOSTS" --hours "$HOURS" --rounds "$ROUNDS" --concurrency 1,8
