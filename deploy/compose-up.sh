#!/usr/bin/env bash
# Brings the compose cluster up and returns once every service is healthy (what
# `docker compose up -d --wait` does; Debian's docker-compose 1.x has no --wait).
# Without Jaeger's image (no registry to pull it from) the other services start
# and export their traces nowhere until OTLP_ENDPOINT names a collector.
#
#   deploy/compose-up.sh [compose options, e.g. -p NAME -f FILE …] [-- SERVICE…]
set -euo pipefail
cd "$(dirname "$0")/.."
opts=(); services=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; services=("$@"); break; fi
  opts+=("$1"); shift
done
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
mkdir -p target/docker/sundial target/docker/etcd

if [ ${#services[@]} -eq 0 ]; then
  mapfile -t services < <("${COMPOSE[@]}" "${opts[@]}" config --services)
  jaeger=$("${COMPOSE[@]}" "${opts[@]}" config | awk '/^  jaeger:/{j=1} j&&/image:/{print $2; exit}')
  if [ -n "$jaeger" ] && ! docker image inspect "$jaeger" >/dev/null 2>&1; then
    echo "no image $jaeger here (no registry): starting the cluster without Jaeger" >&2
    mapfile -t services < <(printf '%s\n' "${services[@]}" | grep -vx jaeger)
  fi
fi

start=$(date +%s)
"${COMPOSE[@]}" "${opts[@]}" up -d "${services[@]}"
ids=$("${COMPOSE[@]}" "${opts[@]}" ps -q "${services[@]}")
deadline=$((start + ${COMPOSE_UP_TIMEOUT:-180}))
while :; do
  waiting=()
  for id in $ids; do
    s=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id")
    case $s in healthy|running) ;; *) waiting+=("$(docker inspect -f '{{.Name}}' "$id"):$s") ;; esac
  done
  [ ${#waiting[@]} -eq 0 ] && break
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "not healthy after ${COMPOSE_UP_TIMEOUT:-180}s: ${waiting[*]}" >&2
    "${COMPOSE[@]}" "${opts[@]}" logs --tail 30 >&2 || true
    exit 1
  fi
  sleep 1
done
echo "cluster healthy in $(( $(date +%s) - start ))s"
