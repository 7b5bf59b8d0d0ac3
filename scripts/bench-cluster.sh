#!/usr/bin/env bash
# HTTP ingest of TSBS cpu-only data (5,000-line batches, 4 connections, WAL fsync
# on every write) into the all-in-one `sundial` and into a loopback cluster (etcd,
# sundial-meta, three sundial-store, one sundial-gateway) with replication factor
# 1 and 2, interleaved over REPEATS rounds so the machine's noise shows.
#
#   scripts/bench-cluster.sh [BATCHES] [REPEATS]   (default 200 batches = 10 M values, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
BATCHES=${1:-200}
REPEATS=${2:-3}
. scripts/bench-lib.sh
stop_all() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; PIDS=(); }

cargo build --release -q --bin sundial --bin sundial-load --bin sundial-meta --bin sundial-store --bin sundial-gateway
B=target/release
LOAD="$B/sundial-load --batches $BATCHES --batch 5000 --connections 4 --hosts 1000"
RESULTS="$WORK/results"

all_in_one() {
  local p; p=$(free_port)
  $B/sundial run --data-dir "$WORK/aio$1" --bind "127.0.0.1:$p" >/dev/null 2>>"$WORK/logs" &
  PIDS+=($!)
  wait_ping "$p"
  $LOAD --url "http://127.0.0.1:$p" --label "all-in-one" | tee -a "$RESULTS"
  stop_all
  rm -rf "$WORK/aio$1"
}

cluster() { # round, replication factor
  local r=$1 rf=$2 d="$WORK/c$1-$2"
  start_cluster "$d"
  local gw=$CLUSTER_GW
  curl -fs -XPOST "http://$gw/query" --data-urlencode "q=CREATE DATABASE bench WITH REPLICATION $rf" >/dev/null
  $LOAD --url "http://$gw" --label "cluster-rf$rf" | tee -a "$RESULTS"
  stop_all
  rm -rf "$d"
}

for r in $(seq "$REPEATS"); do
  echo "== round $r"
  all_in_one "$r"
  cluster "$r" 1
  cluster "$r" 2
done

echo "== values/s (best and median of $REPEATS)"
python3 - "$RESULTS" <<'PY'
import re, sys, statistics
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+): .* = (\d+) values/s", line)
    if m:
        runs.setdefault(m.group(1), []).append(int(m.group(2)))
base = statistics.median(runs.get("all-in-one", [1]))
for label, v in runs.items():
    med = statistics.median(v)
    print(f"{label:12} best {max(v):>10,}  median {med:>12,.0f}  = {100*med/base:5.1f}% of all-in-one (runs: {', '.join(f'{x:,}' for x in v)})")
PY
