#!/usr/bin/env bash
# HTTP ingest of TSBS cpu-only data (5,000-line batches, 4 connections, WAL
# fsync on every write) into Sundial and into InfluxDB 1.6 (Debian's
# `influxdb`), one after the other on this machine. Prints values/s for both.
#
#   scripts/bench-ingest.sh [BATCHES]      (default 200 batches = 10 M values)
set -euo pipefail
cd "$(dirname "$0")/.."
BATCHES=${1:-200}
. scripts/bench-lib.sh

cargo build --release -q --bin sundial --bin sundial-load
LOAD="target/release/sundial-load --batches $BATCHES --batch 5000 --connections 4 --hosts 1000"

# Sundial: fsync always (the default).
P=$(free_port)
target/release/sundial run --data-dir "$WORK/sundial" --bind "127.0.0.1:$P" >/dev/null 2>"$WORK/sundial.log" &
PIDS+=($!)
wait_ping "$P"
$LOAD --url "http://127.0.0.1:$P" --label sundial
kill -TERM "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
echo "sundial disk: $(du -sh "$WORK/sundial" | cut -f1)"

# InfluxDB 1.6: wal-fsync-delay 0s = fsync every write; no self-monitoring.
if command -v influxd >/dev/null; then
  P=$(free_port)
  start_influxd "$WORK/influx" "$P" 'wal-fsync-delay = "0s"'
  $LOAD --url "http://127.0.0.1:$P" --label influxdb-1.6
  echo "influxdb disk: $(du -sh "$WORK/influx" | cut -f1)"
else
  echo "influxd not installed (apt-get install influxdb) — skipped"
fi
