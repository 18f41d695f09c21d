"""Fixtures shared by the test modules. Plain helpers live in the harness modules
(tests/harness/envoy.py, tests/harness/plugin_config.py, …) and are imported from there."""

import subprocess

import pytest

from tests.harness.envoy import BUILDS, ROOT
from tests.harness.plugin_config import CorsExplain


@pytest.fixture(scope="session")
def cors_explain():
    """target/release/cors-explain, up to date with the sources (a no-op after `make build`)."""
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "cors-explain"], cwd=ROOT, check=True,
                   timeout=600)
    return CorsExplain(ROOT / "target" / "release" / "cors-explain")


@pytest.fixture(scope="module", params=BUILDS)
def build(request):
    """Each build of the filter in turn ("wasm", "native"), for suites that hold for both: a
    module-scoped fixture that depends on it starts one Envoy per build."""
    return request.param
