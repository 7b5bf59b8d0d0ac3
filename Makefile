# Sundial developer commands. `make run` starts the server, `make test` runs every test.
CARGO ?= cargo
FUZZ_SECONDS ?= 60

.PHONY: run build test test-deps lint fmt bench fuzz clean

run:
	@if [ ! -d crates/server ]; then \
	  echo "The all-in-one 'sundial' server is not built yet (it lands with issue 5): see README.md, 'What works today'."; exit 1; fi
	$(CARGO) run --release --bin sundial -- $(ARGS)

build:
	$(CARGO) build --workspace --all-targets

test-deps:
	@scripts/test-deps.sh

# One build shared by every test binary; nextest runs them in parallel.
test: test-deps
	$(CARGO) nextest run --workspace --no-fail-fast
	$(CARGO) test --workspace --doc

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

bench:
	$(CARGO) bench --workspace

# Bounded fuzzing of every parser (needs nightly features: RUSTC_BOOTSTRAP=1).
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz
	cd fuzz && for t in $$(RUSTC_BOOTSTRAP=1 $(CARGO) fuzz list); do \
	  mkdir -p corpus/$$t; \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t corpus/$$t seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=5 || exit 1; \
	done

clean:
	$(CARGO) clean
