# Sundial developer commands. `make run` starts the server, `make test` runs every test.
CARGO ?= cargo
FUZZ_SECONDS ?= 60

.PHONY: run build test test-deps lint fmt bench bench-ingest bench-cluster bench-tracing fuzz clean

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

# The same ingest through a loopback cluster (etcd, meta, 3 stores, 1 gateway;
# RF 1 and 2) next to the all-in-one server, interleaved rounds.
bench-cluster:
	scripts/bench-cluster.sh

# Ingest with tracing off and with OTLP export at 1 % sampling, interleaved rounds.
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
