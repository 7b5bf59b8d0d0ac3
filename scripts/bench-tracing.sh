#!/usr/bin/env bash
# What tracing costs the write path: HTTP ingest of TSBS cpu-only data (5,000-line
# batches, 4 connections, fsync on every write) into the all-in-one `sundial` with
# tracing off, and with spans exported over OTLP (to `sundial-otlp-sink`, a real
# OTLP/gRPC receiver) at 1 % sampling, rounds interleaved so the machine's noise
# shows. Besides throughput it reports the server's CPU time for the same load
# (user + system, from /proc): the work tracing adds, which the machine's noise
# moves far less than values/s (this machine has no instruction counters).
#
#   scripts/bench-tracing.sh [BATCHES] [REPEATS] [RATIO]   (default 200, 5, 0.01)
set -euo pipefail
cd "$(dirname "$0")/.."
BATCHES=${1:-200}
REPEATS=${2:-5}
RATIO=${3:-0.01}
. scripts/bench-lib.sh

cargo build --release -q --bin sundial --bin sundial-load --bin sundial-otlp-sink
B=target/release
LOAD="$B/sundial-load --batches $BATCHES --batch 5000 --connections 4 --hosts 1000"
RESULTS="$WORK/results"

start_listening "$WORK/sink.out" $B/sundial-otlp-sink --listen 127.0.0.1:0
SINK=$ADDR
SINK_PID=${PIDS[-1]}

# run LABEL [ENV...]: one server, one load, a graceful stop.
run() {
  local label=$1; shift
  local p; p=$(free_port)
  env "$@" $B/sundial run --data-dir "$WORK/$label-$ROUND" --bind "127.0.0.1:$p" >/dev/null 2>>"$WORK/logs" &
  local pid=$!
  PIDS+=($pid)
  wait_ping "$p"
  $LOAD --url "http://127.0.0.1:$p" --label "$label" | tee -a "$RESULTS"
  # utime + stime in clock ticks, fields 14 and 15 (after the command's parentheses).
  local ticks; ticks=$(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')
  echo "$label cpu $(python3 -c "print($ticks / $(getconf CLK_TCK))")" | tee -a "$RESULTS"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$WORK/$label-$ROUND"
}

for ROUND in $(seq "$REPEATS"); do
  echo "== round $ROUND"
  run tracing-off
  run "otlp-$RATIO" OTEL_EXPORTER_OTLP_ENDPOINT="http://$SINK" OTEL_TRACES_SAMPLER_ARG="$RATIO"
done
kill -INT "$SINK_PID"; wait "$SINK_PID" 2>/dev/null || true
echo "spans received by the sink: $(sed -n 's/^spans //p' "$WORK/sink.out" | tail -1)"

echo "== values/s (median of $REPEATS)"
python3 - "$RESULTS" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+): .* = (\d+) values/s", line)
    if m:
        runs.setdefault(m.group(1), []).append(int(m.group(2)))
off = runs.pop("tracing-off")
base = statistics.median(off)
cpu = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+) cpu ([0-9.]+)$", line)
    if m:
        cpu.setdefault(m.group(1), []).append(float(m.group(2)))
print(f"{'tracing-off':14} median {base:>12,.0f}  = 100.0%  (runs: {', '.join(f'{x:,}' for x in off)})")
for label, v in runs.items():
    med = statistics.median(v)
    # Each round's traced run against the untraced run just before it.
    paired = statistics.median(t / o for t, o in zip(v, off))
    print(f"{label:14} median {med:>12,.0f}  = {100 * med / base:5.1f}% of tracing off; "
          f"median of per-round ratios {100 * paired:5.1f}%  (runs: {', '.join(f'{x:,}' for x in v)})")
print("== server CPU seconds for the same load (median of per-round ratios)")
coff = cpu.pop("tracing-off")
print(f"{'tracing-off':14} median {statistics.median(coff):6.2f} s  (runs: {', '.join(f'{x:.2f}' for x in coff)})")
for label, v in cpu.items():
    paired = statistics.median(t / o for t, o in zip(v, coff))
    print(f"{label:14} median {statistics.median(v):6.2f} s  = {100 * paired:5.1f}% of tracing off's CPU  "
          f"(runs: {', '.join(f'{x:.2f}' for x in v)})")
PY
