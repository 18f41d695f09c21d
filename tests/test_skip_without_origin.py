"""envoy/skip-without-origin.yaml: our filter wrapped in ExtensionWithMatcher + SkipFilter when the
request has no Origin and is not a GET or HEAD. The shipped file runs as it is (ports and the module
path rewritten) next to a listener with the same filter unwrapped: every request gets exactly the
same answer from both; other requests without Origin pass to the backend untouched, and GET / HEAD
without Origin still get `Vary: Origin`."""

import copy

import pytest
import yaml

from tests.harness import envoy
from tests.harness.envoy import ROOT, WASM, free_port, header_values, request

SHIPPED = ROOT / "envoy" / "skip-without-origin.yaml"
ALLOWED = "https://app.example.com"
# Headers that differ between any two responses whatever the filter does.
VOLATILE = {"date", "x-envoy-upstream-service-time", "server"}


@pytest.fixture(scope="module")
def ports():
    config = yaml.safe_load(SHIPPED.read_text())
    listeners = config["static_resources"]["listeners"]
    api, backend = listeners
    wrapper = api["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][0]
    assert wrapper["typed_config"]["@type"].endswith("ExtensionWithMatcher")
    inner = wrapper["typed_config"]["extension_config"]
    inner["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = str(WASM)

    # The same listener with the filter as it is, unwrapped: the reference.
    plain = copy.deepcopy(api)
    plain["name"] = "plain"
    plain["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][0] = copy.deepcopy(inner)

    p = {"skip": free_port(), "plain": free_port(), "backend": free_port()}
    api["address"]["socket_address"].update(address="127.0.0.1", port_value=p["skip"])
    plain["address"]["socket_address"].update(address="127.0.0.1", port_value=p["plain"])
    backend["address"]["socket_address"]["port_value"] = p["backend"]
    cluster = config["static_resources"]["clusters"][0]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    endpoint["address"]["socket_address"]["port_value"] = p["backend"]
    listeners.append(plain)
    config["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": free_port()}}}
    proxy = envoy.Envoy(config)
    yield p
    proxy.stop()


def stable(response):
    status, headers, body = response
    return status, sorted((k, v) for k, v in headers if k not in VOLATILE), body


CORS_REQUESTS = {
    "allowed preflight": ("OPTIONS", [("origin", ALLOWED), ("access-control-request-method", "PUT"),
                                      ("access-control-request-headers", "content-type")]),
    "preflight for a method outside the policy": ("OPTIONS", [("origin", ALLOWED),
                                                              ("access-control-request-method", "DELETE")]),
    "preflight for a header outside the policy": ("OPTIONS", [("origin", ALLOWED),
                                                              ("access-control-request-method", "POST"),
                                                              ("access-control-request-headers", "x-secret")]),
    "preflight from a refused origin": ("OPTIONS", [("origin", "https://evil.example.net"),
                                                    ("access-control-request-method", "PUT")]),
    "OPTIONS with Origin but no request method": ("OPTIONS", [("origin", ALLOWED)]),
    "actual GET from the allowed origin": ("GET", [("origin", ALLOWED)]),
    "actual POST from a refused origin": ("POST", [("origin", "https://evil.example.net"),
                                                   ("content-length", "0")]),
    "origin null": ("GET", [("origin", "null")]),
    "empty Origin header": ("GET", [("origin", "")]),
    "non-UTF-8 Origin": ("GET", [("origin", b"https://\xffapp.example.com")]),
}


@pytest.mark.parametrize("name", CORS_REQUESTS)
def test_cors_requests_are_handled_exactly_as_without_the_wrapper(ports, name):
    method, headers = CORS_REQUESTS[name]
    wrapped = stable(request(ports["skip"], method, "/items", headers))
    reference = stable(request(ports["plain"], method, "/items", headers))
    assert wrapped == reference


def test_the_filter_acts_behind_the_wrapper(ports):
    status, headers, _ = request(ports["skip"], "OPTIONS", "/items", CORS_REQUESTS["allowed preflight"][1])
    assert status == 200
    assert header_values(headers, "access-control-allow-origin") == [ALLOWED]
    assert header_values(headers, "access-control-allow-credentials") == ["true"]
    status, headers, body = request(ports["skip"], "GET", "/items", [("origin", ALLOWED)])
    assert (status, body) == (200, b"backend body\n")
    assert header_values(headers, "access-control-allow-origin") == [ALLOWED]
    assert header_values(headers, "access-control-expose-headers") == ["x-total"]
    assert "Origin" in ", ".join(header_values(headers, "vary"))


@pytest.mark.parametrize("method", ["POST", "OPTIONS", "DELETE"])
def test_non_cacheable_requests_without_origin_pass_untouched(ports, method):
    extra = [("content-length", "0")] if method == "POST" else []
    status, headers, body = request(ports["skip"], method, "/items",
                                    [("access-control-request-method", "PUT")] + extra)
    assert (status, body) == (200, b"backend body\n")
    assert header_values(headers, "x-total") == ["42"]
    assert not [k for k, _ in headers if k.startswith("access-control-") or k == "vary"]
    assert stable(request(ports["skip"], method, "/items", extra)) == \
        stable(request(ports["plain"], method, "/items", extra))


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_cacheable_requests_without_origin_are_not_skipped(ports, method):
    # The wrapper must not skip what the Fetch standard's cache rule needs: `Vary: Origin`.
    status, headers, _ = request(ports["skip"], method, "/items")
    assert status == 200
    assert header_values(headers, "vary") == ["Origin"]
    assert stable(request(ports["skip"], method, "/items")) == \
        stable(request(ports["plain"], method, "/items"))