"""Every Envoy YAML we ship loads in the real Envoy (`--mode validate` also loads the module and
runs on_configure, so a plugin configuration the filter refuses fails here; it also reads the TLS
certificate, which `make demo` makes at run time: here a copy of the config points at one made
for the test), and the docker-compose demo parses."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.envoy import ROOT, validate_file

CONFIGS = sorted((ROOT / "envoy").glob("*.yaml"))


def test_there_are_envoy_configs_to_check():
    assert {p.name for p in CONFIGS} >= {"demo.yaml", "per-route.yaml", "string-value.yaml"}


DEMO_TLS_DIR = "build/demo-tls/"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_envoy_config_is_valid(path, tmp_path):
    text = path.read_text()
    if DEMO_TLS_DIR in text:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_tls.py"), str(tmp_path / "tls")],
                       check=True, capture_output=True)
        path = tmp_path / path.name
        path.write_text(text.replace(DEMO_TLS_DIR, f"{tmp_path / 'tls'}/"))
    code, output = validate_file(path)
    assert code == 0, output[-3000:]
    assert "OK" in output


def test_docker_compose_demo_parses_and_mounts_what_the_demo_needs():
    compose = shutil.which("docker-compose")
    if compose is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose missing: scripts/setup.sh installs Debian's docker-compose")
        pytest.skip("docker-compose missing: run `make setup`")
    p = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yml"), "config"],
                       capture_output=True, text=True, cwd=str(ROOT))
    assert p.returncode == 0, p.stderr
    assert "envoyproxy/envoy:v1.40.0" in p.stdout
    for mounted in ["cors_filter.wasm", "demo.yaml", "/demo/web", "/demo/build/demo-tls"]:
        assert mounted in p.stdout
