"""The Envoy configurations docs/protocols.md shows for gRPC-Web, Connect and MCP: the doc shows
each file as it is (the file tests/test_protocols_browser.py runs in Chromium, and which
tests/test_envoy_configs.py validates with `envoy --mode validate`, like every envoy/*.yaml), and
each puts the CORS filter first with the protocol's preset."""

import re

import pytest
import yaml

from tests.harness.envoy import ROOT

DOC = ROOT / "docs" / "protocols.md"
PROTOCOLS = ("grpc-web", "connect", "mcp")
# The HTTP filters each file must chain, in order.
CHAINS = {
    "grpc-web": ["envoy.filters.http.wasm", "envoy.filters.http.grpc_web", "envoy.filters.http.router"],
    "connect": ["envoy.filters.http.wasm", "envoy.filters.http.router"],
    "mcp": ["envoy.filters.http.wasm", "envoy.filters.http.router"],
}


def shown_in_doc():
    """{file name: YAML text} of each complete file docs/protocols.md shows."""
    blocks = re.findall(r"<summary><code>envoy/([\w.-]+\.yaml)</code></summary>\s*```yaml\n(.*?)```",
                        DOC.read_text(), re.S)
    return dict(blocks)


def test_the_doc_shows_each_protocol_file_as_it_is():
    shown = shown_in_doc()
    assert set(shown) == {f"{p}.yaml" for p in PROTOCOLS}
    for name, text in shown.items():
        assert text == (ROOT / "envoy" / name).read_text(), name


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_cors_filter_comes_first_with_the_protocols_preset(protocol):
    config = yaml.safe_load((ROOT / "envoy" / f"{protocol}.yaml").read_text())
    [listener] = config["static_resources"]["listeners"]
    filters = listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
    assert [f["name"] for f in filters] == CHAINS[protocol]
    plugin = filters[0]["typed_config"]["config"]
    assert plugin["vm_config"]["code"]["local"]["filename"] == "build/cors_filter.wasm"
    assert plugin["configuration"]["value"]["policy"]["presets"] == [protocol]
