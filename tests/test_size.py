"""The release module's size budget: `build/cors_filter.wasm` (what `make build` writes, after
wasm-opt) stays within 256 KiB, so that every Envoy that pulls it (Istio, Envoy Gateway) loads it
quickly and each VM's memory stays small. Measured figures and what the bytes are spent on:
docs/performance.md#size."""

from tests.harness.envoy import WASM

BUDGET = 256 * 1024


def test_the_wasm_module_stays_within_its_size_budget():
    size = WASM.stat().st_size
    assert size <= BUDGET, f"{WASM} is {size} bytes, over the {BUDGET}-byte budget"
