# Sundial developer commands. `make run` starts the server, `make test` runs every test.
CARGO ?= cargo
FUZZ_SECONDS ?= 60

.PHONY: run build test test-deps test-compose images compose-up compose-down lint fmt bench bench-ingest bench-disk bench-series bench-cluster bench-tracing bench-query fuzz clean

# The all-in-one server on the embedded meta backend, data in ./data, HTTP on 127.0.0.1:8086.
run:
	$(CARGO) run --release --bin sundial -- run $(ARGS)

build:
	$(CARGO) build --workspace --all-targets

test-deps:
	@scripts/test-deps.sh

# One build shared by every test binary (the cluster tests start the other
# packages' binaries, which nextest alone would not build); nextest runs them in
# parallel and its summary is the last thing printed (doc tests run first).
test: test-deps build
	$(CARGO) test --workspace --doc
	$(CARGO) nextest run --workspace --no-fail-fast
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory test-compose; \
	elif [ "$$CI" = true ]; then echo "CI: Docker is missing, the compose test cannot run" >&2; exit 1; \
	else echo "Docker is not here: skipping the compose test"; fi

# The compose cluster's images (sundial:latest, sundial-etcd:latest) from one
# release build, on `scratch`; writes the shared secret into .env the first time.
images:
	deploy/images.sh

# The compose cluster, returning once every service is healthy (Compose v1 has
# no `up --wait`); without Jaeger's image it starts everything else.
compose-up:
	deploy/compose-up.sh

compose-down:
	@mkdir -p target/docker/sundial target/docker/etcd
	@if docker compose version >/dev/null 2>&1; then docker compose down -v; else docker-compose down -v; fi

# Images, then the cluster under Docker: bring-up, kills, a partition, etcd down,
# a gateway restart, one trace, `down -v` (tests/compose/test_compose.py).
test-compose: images
	timeout 900 python3 tests/compose/test_compose.py

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

bench:
	$(CARGO) bench --workspace

# HTTP ingest, Sundial next to InfluxDB 1.6 (Debian's influxdb), same load, same machine.
bench-ingest:
	scripts/bench-ingest.sh

# Bytes on disk per value next to VictoriaMetrics (Debian's victoria-metrics), same
# TSBS data, three data sets (two-decimal in order, a tenth of batches late, full
# precision).
bench-disk:
	scripts/bench-disk.sh

# One shard with a million series: write rates, reopen time, memory per series; then
# the same reopen with an index memory limit small enough that data files keep only
# their time range in memory.
bench-series:
	scripts/bench-series.sh

# The same ingest through a loopback cluster (etcd, meta, 3 stores, 1 gateway;
# RF 1 and 2) next to the all-in-one server, interleaved rounds.
bench-cluster:
	scripts/bench-cluster.sh

# Ingest with tracing off and with OTLP export at 1 % sampling, interleaved rounds.
# TSBS devops queries: Sundial (all-in-one, cluster) next to InfluxDB 1.6, answers compared.
bench-query:
	scripts/bench-query.sh

bench-tracing:
	scripts/bench-tracing.sh

# Bounded fuzzing of every parser (needs nightly features: RUSTC_BOOTSTRAP=1).
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz
	cd fuzz && for t in $$(RUSTC_BOOTSTRAP=1 $(CARGO) fuzz list); do \
	  mkdir -p corpus/$$t; \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t corpus/$$t seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=5 || exit 1; \
	done

clean:
	$(CARGO) clean
