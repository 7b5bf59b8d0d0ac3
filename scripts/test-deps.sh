#!/usr/bin/env bash
# Installs what the tests need when it is missing: real etcd, real InfluxDB
# clients, protoc for the gRPC crates, promtool, cargo-nextest. Idempotent and quiet.
set -euo pipefail

need_apt=()
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
# etcdctl: the compose cluster's etcd image checks its health with it.
command -v etcdctl >/dev/null 2>&1 || need_apt+=(etcd-client)
command -v influx >/dev/null 2>&1 || need_apt+=(influxdb-client)
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
# promtool checks that every /metrics page parses as Prometheus text.
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} (apt)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if ! "$PY" -c 'import influxdb, influxdb_client' >/dev/null 2>&1; then
  echo "installing Python clients influxdb, influxdb-client (pip)"
  "$PY" -m pip install -q influxdb influxdb-client
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
