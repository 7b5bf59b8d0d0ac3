#!/usr/bin/env bash
# Bytes on disk per value: Sundial next to VictoriaMetrics (Debian's
# `victoria-metrics`) in the same run, on TSBS cpu-only data (1,000 hosts, ten
# fields, one point per host every 10 s; 5,000-line batches over 4 connections),
# default settings. Bytes are counted 20 s after the load and a graceful stop,
# everything in the data directory included (WAL, indexes, metadata).
#
#   scripts/bench-disk.sh [BATCHES]     (default 216 batches = 3 h = 10.8 M values)
#   SETS=full scripts/bench-disk.sh     (only some data sets: decimal2, decimal2-late, full)
#
# Data sets: two-decimal random walks in order; the same with a tenth of the
# batches arriving up to 30 minutes late; full-precision random walks in order.
set -euo pipefail
cd "$(dirname "$0")/.."
BATCHES=${1:-216}
. scripts/bench-lib.sh
. scripts/apt-need.sh
apt_need victoria-metrics:victoria-metrics

cargo build --release -q --bin sundial --bin sundial-load
cargo build --release -q -p sundial-engine --example tsf_breakdown
BIN=${CARGO_TARGET_DIR:-target}/release
VALUES=$((BATCHES * 5000 * 10))
LOAD="$BIN/sundial-load --batches $BATCHES --batch 5000 --connections 4 --hosts 1000"

# bytes of a directory, everything in it
bytes() { du -sb "$1" | cut -f1; }
per_value() { python3 -c "print(f'{$1 / $VALUES:.3f}')"; }

stop() { kill -TERM "$1"; wait "$1" 2>/dev/null || true; }

sundial() { # $1 = label, rest = load options
  local label=$1; shift
  local dir="$WORK/sundial-$label" p
  p=$(free_port)
  $BIN/sundial run --data-dir "$dir" --bind "127.0.0.1:$p" >/dev/null 2>>"$WORK/logs" &
  local pid=$!
  PIDS+=("$pid")
  wait_ping "$p"
  $LOAD --url "http://127.0.0.1:$p" --label "sundial/$label" "$@"
  sleep 20
  stop "$pid"
  echo "sundial/$label: $(bytes "$dir") bytes = $(per_value "$(bytes "$dir")") bytes/value"
  # Where the data files' bytes go, and Gorilla XOR on the same values.
  find "$dir" -name '*.tsf' -print0 | xargs -0 "$BIN/examples/tsf_breakdown" | sed 's/^/  /'
}

victoria() {
  local label=$1; shift
  local dir="$WORK/vm-$label" p
  p=$(free_port)
  victoria-metrics -storageDataPath "$dir" -httpListenAddr "127.0.0.1:$p" \
    -search.disableCache -loggerLevel ERROR >/dev/null 2>>"$WORK/logs" &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$p/health" >/dev/null && break; sleep 0.1; done
  $LOAD --url "http://127.0.0.1:$p" --label "victoria-metrics/$label" --no-create "$@"
  sleep 20
  stop "$pid"
  echo "victoria-metrics/$label: $(bytes "$dir") bytes = $(per_value "$(bytes "$dir")") bytes/value"
}

SETS=${SETS:-decimal2,decimal2-late,full}
for set in "decimal2:--decimals 2" "decimal2-late:--decimals 2 --late 0.1 --late-window-secs 1800" "full:"; do
  label=${set%%:*}
  opts=${set#*:}
  [[ ",$SETS," == *",$label,"* ]] || continue
  # shellcheck disable=SC2086
  sundial "$label" $opts
  # shellcheck disable=SC2086
  victoria "$label" $opts
done
