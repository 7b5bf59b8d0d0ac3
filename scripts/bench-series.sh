#!/usr/bin/env bash
# One shard with a million series (crates/engine/examples/series_memory.rs): new
# series and rounds into existing ones, then a fresh process reopens the store
# (first acknowledged write, RSS per series at rest, one more round) — once with no
# index memory limit and once with a limit under which data files keep only their
# time range in memory.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${SERIES:-1000000}
ROUNDS=${ROUNDS:-4}
LIMIT=${DEGRADED_LIMIT:-$((256 << 20))}
DIR=${SERIES_MEMORY_DIR:-target/bench-series}
cargo build --release -p sundial-engine --example series_memory
BIN=${CARGO_TARGET_DIR:-target}/release/examples/series_memory
rm -rf "$DIR" "$DIR.copy"
echo "== $N series, $ROUNDS rounds, reopened without an index memory limit"
SERIES_MEMORY_DIR="$DIR" "$BIN" "$N" "$ROUNDS"
cp -a "$DIR" "$DIR.copy"
echo "== the same store reopened with an index memory limit of $((LIMIT >> 20)) MiB"
SERIES_MEMORY_INDEX_LIMIT=$LIMIT "$BIN" open "$DIR.copy" "$N" "$((ROUNDS + 1))"
rm -rf "$DIR" "$DIR.copy"
