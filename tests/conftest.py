"""Fixtures shared by the test modules. Plain helpers live in the harness modules
(tests/harness/envoy.py, tests/harness/plugin_config.py, …) and are imported from there."""

import subprocess

import pytest

from tests.compat_versions import selected
from tests.harness.envoy import ROOT
from tests.harness.plugin_config import CorsExplain


@pytest.fixture(scope="session")
def cors_explain():
    """target/release/cors-explain, up to date with the sources (a no-op after `make build`)."""
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "cors-explain"], cwd=ROOT, check=True,
                   timeout=600)
    return CorsExplain(ROOT / "target" / "release" / "cors-explain")


# On an Envoy other than 1.40 (CORS_ENVOY_VERSION, `make compat`) the native build refuses to load:
# the suites run the Wasm build only there, and tests/test_compat.py checks the refusal instead.
@pytest.fixture(scope="module", params=selected().builds)
def build(request):
    """Each build of the filter in turn ("wasm", "native"; the ones that load on the Envoy under
    test), for suites that hold for both: a module-scoped fixture that depends on it starts one
    Envoy per build."""
    return request.param
