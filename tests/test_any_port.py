"""`scheme://host:*` in allow_origins (every port of one host, for local development), in a real
Envoy: anchored like the subdomain pattern, so only that scheme and host pass, on any port."""

import pytest

from tests.harness.envoy import Envoy, catch_all, free_port, header_values, listener, preflight, request, wasm_filter, with_upstream

POLICY = {"allow_origins": ["http://localhost:*", "https://*.dev.example:*"], "allow_methods": "PUT"}


@pytest.fixture(scope="module")
def port():
    p = free_port()
    e = Envoy(with_upstream([listener("l", p, [wasm_filter({"policy": POLICY})], catch_all("v"))]))
    yield p
    e.stop()


@pytest.mark.parametrize("origin", ["http://localhost:5173", "http://localhost:3000", "http://localhost",
                                    "https://app.dev.example:8443", "https://app.dev.example"])
def test_every_port_of_the_listed_host_is_allowed(port, origin):
    status, headers, _ = preflight(port, origin, "PUT")
    assert status == 200
    assert header_values(headers, "access-control-allow-origin") == [origin]
    status, headers, _ = request(port, "GET", "/", [("origin", origin)])
    assert header_values(headers, "access-control-allow-origin") == [origin]


@pytest.mark.parametrize("origin", ["https://localhost:5173", "http://localhost.evil.example:5173",
                                    "http://evil-localhost:5173", "http://localhost:05173", "http://localhost:65536",
                                    "https://dev.example:8443", "http://app.dev.example:8443"])
def test_other_schemes_hosts_and_malformed_ports_are_refused(port, origin):
    status, headers, _ = request(port, "GET", "/", [("origin", origin)])
    assert status == 200
    assert header_values(headers, "access-control-allow-origin") == []
    assert header_values(headers, "vary") == ["Origin"]
