"""Istio's CORS tests replayed through our filter, each `corsPolicy` pasted as written (Istio's
vocabulary): the two route-translation tests and the six validation cases as load verdicts
(`cors-explain --check`, the filter's own parser), and the integration test's three calls through
a real Envoy. Cases: tests/harness/istio_cors_cases.py (istio/istio@86c9f01f, files cited there).

Every case agrees or is a documented difference (docs/migrating-from-envoy-cors.md, "Pasting from
Istio and Envoy Gateway"), asserted here to differ exactly as documented:
- a matcher no origin can match (`exact: exact`, `prefix: prefix`, `exact: cors.com`: no scheme)
  is refused at load, where Envoy accepts it and matches it against whatever `Origin` a client
  sends. Browsers always send `scheme://host[:port]`. So both translation tests, the validation
  case "non empty matchType AllowOrigins", and the integration test's VirtualService are refused,
  and its three calls are not replayed as written;
- a policy without `allowOrigins` and with `maxAge` as a duration has nothing that tells Istio's
  vocabulary from Envoy Gateway's; it is read as Envoy Gateway's, whose translator accepts any
  method and cuts `maxAge` to whole seconds: "bad method" and "bad max age" load, where Istio's
  validation refuses them. No origin is allowed under either reading.

The integration test's three calls are then replayed with `cors.com` written as the origin a
browser sends (`http://cors.com`), in the policy and in the requests, to check what Istio generates
for the rest of the policy: all three agree, the lists joined with `,` and `maxAge: 24h` as 86400
included. (The preflight asks for `DELETE`, which the policy does not list: answered with the
policy, as Envoy does, and the browser refuses it.)
"""

import pytest

from tests.harness import envoy
from tests.harness.istio_cors_cases import INTEGRATION_CALLS, INTEGRATION_CORS, LOAD_CASES

# LoadCase name: (the field path our refusal names, or None when ours accepts it; why)
LOAD_DIFFERENCES = {
    "translate": ("routes.vs.allowOrigins[0].exact", "a matcher no origin can match is refused"),
    "translate-ignore": ("routes.vs.allowOrigins[0].exact", "a matcher no origin can match is refused"),
    "non empty matchType AllowOrigins": ("routes.vs.allowOrigins[0].exact",
                                         "a matcher no origin can match is refused"),
    "bad method": (None, "no allowOrigins and a duration maxAge: read as Envoy Gateway's"),
    "bad max age": (None, "no allowOrigins and a duration maxAge: read as Envoy Gateway's"),
}

# The integration test's origin as a browser writes it.
ORIGIN = "http://cors.com"

def configuration(cors):
    return {"routes": {"vs": cors}}


@pytest.mark.parametrize("case", LOAD_CASES, ids=lambda c: f"{c.test}/{c.name}")
def test_istio_unit_test_policy_load_verdict(cors_explain, case):
    accepted, message = cors_explain.verdict(configuration(case.cors))
    if case.name in LOAD_DIFFERENCES:
        refused_at, _why = LOAD_DIFFERENCES[case.name]
        if refused_at is None:
            assert accepted and not case.istio_accepts, message
        else:
            assert not accepted and case.istio_accepts and message.startswith(refused_at + ":"), message
    else:
        assert accepted == case.istio_accepts, message


def test_the_integration_virtual_service_is_refused_at_load(cors_explain):
    accepted, message = cors_explain.verdict(configuration(INTEGRATION_CORS))
    assert not accepted
    assert message.startswith('routes.vs.allowOrigins[0].exact: "cors.com" never matches an origin'), message


def with_origin_as_browsers_send_it(cors):
    return {**cors, "allowOrigins": [{"exact": ORIGIN}]}


@pytest.fixture(scope="module")
def mesh():
    port = envoy.free_port()
    listeners = [envoy.listener("vs", port,
                                # JSON text, as Istio's WasmPlugin `pluginConfig` arrives.
                                [envoy.wasm_filter(configuration(with_origin_as_browsers_send_it(INTEGRATION_CORS)),
                                                   encoding="json")],
                                envoy.catch_all("vs", [envoy.route("vs")]))]
    proxy = envoy.Envoy(envoy.with_upstream(listeners))
    client = envoy.Client()
    yield client, port
    client.close()
    proxy.stop()
    assert "panicked" not in proxy.log()


def check(status, headers, call):
    """Istio's `check.OK()` and `check.ResponseHeader(s)`: status 200, and each header's first
    value (or "" when absent) equal to the expected string. Returns {header: what we sent} for
    every mismatch, with the status under ":status"."""
    wrong = {} if status == 200 else {":status": status}
    for name, expected in call.response_headers.items():
        values = envoy.header_values(headers, name.lower())
        actual = values[0] if values else ""
        if actual != (ORIGIN if expected == "cors.com" else expected):
            wrong[name] = actual
    return wrong


@pytest.mark.parametrize("call", INTEGRATION_CALLS, ids=lambda c: c.name)
def test_istio_integration_call_with_the_origin_written_as_one(mesh, call):
    client, port = mesh
    request_headers = tuple((k, ORIGIN if v == "cors.com" else v) for k, v in call.request_headers)
    status, headers = client.send(port, call.method, "/", request_headers)
    assert check(status, headers, call) == {}, f"{status} {headers}"
