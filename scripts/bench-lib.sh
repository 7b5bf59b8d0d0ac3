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
