#!/usr/bin/env bash
# Installs what the tests need when it is missing: real etcd, real InfluxDB
# clients, protoc for the gRPC crates, promtool, cargo-nextest. Idempotent and quiet.
set -euo pipefail

. "$(dirname "$0")/apt-need.sh"
# etcdctl: the compose cluster's etcd image checks its health with it; promtool
# checks that every /metrics page parses as Prometheus text.
apt_need etcd:etcd-server etcdctl:etcd-client influx:influxdb-client influxd:influxdb \
  protoc:protobuf-compiler promtool:prometheus

PY=${PYTHON:-python3}
if ! "$PY" -c 'import influxdb, influxdb_client' >/dev/null 2>&1; then
  echo "installing Python clients influxdb, influxdb-client (pip)"
  "$PY" -m pip install -q influxdb influxdb-client
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
