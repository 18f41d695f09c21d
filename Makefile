# The two commands that matter: `make demo` and `make test`. Each works on a fresh clone with only
# rustup: `setup` (scripts/setup.sh) installs Envoy 1.40.0 and the Python tools in .venv and the
# Debian packages, and every target that runs them depends on it. Building needs only Rust
# (`rust`: the wasm32-wasip1 target). Python programs run as modules from the repository root
# (`$(PY) -m bench.run`), so that they import the shared harness as `tests.harness`.

.PHONY: all rust setup build native floor lint unit memcheck e2e test demo-tls demo screenshot bench bench-quick bench-check soak fuzz oci dist compat compat-others clean

PY := .venv/bin/python
WASM := build/cors_filter.wasm
NATIVE := build/libcors.so
FLOOR := build/cors_floor.wasm
FLOOR_NATIVE := build/libcors_floor.so
# wasm-opt (Debian's binaryen 108, installed by `setup`) shrinks a module when it is there; these
# features are what current rustc emits.
WASM_OPT_FLAGS := -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
                  --enable-nontrapping-float-to-int --strip-debug --strip-producers
# $(call wasm_opt,IN,OUT): IN shrunk into OUT, or copied when wasm-opt is not installed.
wasm_opt = mkdir -p build && if command -v wasm-opt >/dev/null; then wasm-opt $(WASM_OPT_FLAGS) $(1) -o $(2); \
           else cp $(1) $(2); fi && echo "$(2): $$(stat -c %s $(2)) bytes"

all: build

rust:
	@./scripts/setup.sh rust

setup:
	@./scripts/setup.sh

# The release modules (the .wasm and the native .so) and the cors-explain CLI.
build: rust native
	cargo build --release --target wasm32-wasip1 -p cors-filter
	cargo build --release -p cors-explain
	@$(call wasm_opt,target/wasm32-wasip1/release/cors_filter.wasm,$(WASM))

# The Envoy 1.40 dynamic module for x86_64 Linux (docs/native.md). Cargo profile `native`: release
# settings with panic = "unwind", which each hook's catch_unwind needs.
native: rust
	cargo build --profile native -p cors-native
	@mkdir -p build && cp target/native/libcors.so $(NATIVE) && echo "$(NATIVE): $$(stat -c %s $(NATIVE)) bytes"

# bench/floor: the near-empty proxy-wasm filter `make bench` compares with (its own workspace);
# bench/floor-native: its dynamic-module twin, build/libcors_floor.so (Envoy finds it by the name
# `cors_floor` in build/, ENVOY_DYNAMIC_MODULES_SEARCH_PATH).
floor: rust
	cd bench/floor && cargo build --quiet --release --target wasm32-wasip1
	@$(call wasm_opt,bench/floor/target/wasm32-wasip1/release/cors_floor.wasm,$(FLOOR))
	cd bench/floor-native && cargo build --quiet --release
	@cp bench/floor-native/target/release/libcors_floor.so $(FLOOR_NATIVE) && echo "$(FLOOR_NATIVE): $$(stat -c %s $(FLOOR_NATIVE)) bytes"

# The lints docs/security.md's "does not crash" rests on (`[workspace.lints]`), for both targets.
lint: rust
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --release --target wasm32-wasip1 -p cors-filter -p cors-core -- -D warnings

unit:
	cargo test --workspace --quiet

# The native module's unit tests under valgrind: a hook that read a filter Envoy freed inside
# an answer would pass `unit` and fails here.
memcheck: setup
	./scripts/memcheck.sh

# The end-to-end tests load build/; -rs: a skipped test says why.
e2e: setup build
	.venv/bin/pytest -q -rs tests

# The compatibility suites on Envoy 1.36 to 1.40 (tests/compat_versions.py, docs/compatibility.md):
# `compat` runs them on every version and writes docs/compatibility-results.md; `compat-others` on
# the versions other than 1.40 (whose suites `e2e` runs), its table into build/compat/: `make test`
# runs that one (about 75 s more).
compat: setup build
	$(PY) -m scripts.compat

compat-others: setup build
	$(PY) -m scripts.compat --other-versions

test: setup lint build unit memcheck e2e compat-others bench-check

# The demo's TLS certificate for https://localhost:10443 (self-signed for localhost, made here,
# never committed; kept while it is valid).
demo-tls: setup
	@$(PY) -m scripts.demo_tls build/demo-tls >/dev/null

# The demo: page on http://localhost:8080, API through the filter on http://localhost:10000 and on
# https://localhost:10443 (HTTP/2; HTTP/3 over UDP). Browsers trust the demo certificate by its key:
# the second line prints a Chromium command that opens the page against the HTTPS API.
demo: setup build demo-tls
	@echo "demo: page http://localhost:8080  API http://localhost:10000 and https://localhost:10443  (Ctrl-C stops)"
	@echo "      the page over HTTP/2: chromium --user-data-dir=\$$(mktemp -d) --ignore-certificate-errors-spki-list=$$(cat build/demo-tls/spki.txt) 'http://localhost:8080/?api=https://localhost:10443'"
	.venv/bin/envoy -c envoy/demo.yaml --concurrency 1 --use-dynamic-base-id --log-level warn

# docs/demo.png: the demo page as `make demo` shows it (the demo's ports must be free). The only
# target besides `make compat` that writes a tracked file: `make test` leaves every tracked file as it is.
screenshot: setup build
	$(PY) -m scripts.screenshot

# On demand, not part of `make test`: the benchmark against Envoy's own CORS filter (docs/performance.md),
# the soak test under load and listener reloads (soak/README.md), fuzzing (cargo-fuzz and a nightly
# toolchain, fuzz/README.md).
# Goals are judged on instructions per request (bench/instructions.py, under callgrind: they repeat
# to within 0.5 %); req/s and CPU per request (bench/run.py, wrk) move by 10-30 % between runs.
bench: setup build floor
	$(PY) -m bench.instructions
	$(PY) -m bench.run

# Only the instruction count (a few minutes): bench/instructions.md and docs/instructions.png.
bench-quick: setup build floor
	$(PY) -m bench.instructions

# Part of `make test`: the instruction count again, written nowhere; fails when one of our
# listeners got more than 2 % more expensive against its reference than bench/instructions.json.
bench-check: setup build floor
	$(PY) -m bench.instructions --check

soak: setup build
	$(PY) -m soak.run

fuzz:
	fuzz/run.sh $${FUZZ_SECONDS:-60}

# The OCI image (Istio / Envoy Gateway "compat" Wasm image) as dist/oci/ and dist/cors-filter.oci.tar,
# and all release artefacts in dist/ (modules, sha256, images, JSON Schema, manifests with real digests).
oci: setup build
	$(PY) -m scripts.oci

dist: setup build
	PYTHON=$(PY) scripts/dist.sh

clean:
	rm -rf build target
