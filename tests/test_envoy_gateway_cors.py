"""Envoy Gateway's end-to-end CORS test `CORSFromSecurityPolicy`, replayed through our filter in a
real Envoy, each SecurityPolicy's `cors` block pasted as written (Envoy Gateway's vocabulary).

The policies and cases (tests/harness/envoy_gateway_cors_cases.py) are transcribed from
envoyproxy/gateway@d32f28294245e454d20f81d323d626a90e660c1e, test/e2e/testdata/cors-security-policy.yaml
and test/e2e/tests/cors.go. Each policy's HTTPRoute becomes one Envoy route matched as `PathPrefix`,
its block goes into the plugin configuration's `routes` under that route's name, and the four
cases are judged with the Gateway API conformance comparison that Envoy Gateway's test uses
(`compare_round_trip`, shared with tests/test_gateway_api_cors.py).

Two cases are documented differences (docs/migrating-from-envoy-cors.md, "Pasting from Istio and
Envoy Gateway"), asserted here to differ exactly as documented:
- 3: a preflight from an origin the policy does not allow is answered `403` without CORS headers;
  Envoy (`forward_not_matching_preflights: false`, which Envoy Gateway sets) answers `200` with
  the policy's methods and headers. A browser refuses both.
- 4: `allowOrigins: ["*"]` answers `Access-Control-Allow-Origin: *`; Envoy echoes the origin.
  A browser allows both (no credentials).
"""

import pytest

from tests.harness import envoy
from tests.harness.envoy_gateway_cors_cases import CASES, POLICIES
from tests.test_gateway_api_cors import compare_round_trip

# case id: (what the case's comparison reports, why: the documented difference)
INTENTIONAL_DIFFERENCES = {
    "3-preflight-unknown-origin": (
        ["status 403, expected one of [200]"],
        "a refused preflight is answered 403 without CORS headers (Envoy: 200 listing the policy)"),
    "4-preflight-any-origin": (
        ["access-control-allow-origin: '*', expected 'https://foo.bar.com'"],
        "allowOrigins [\"*\"] is answered with a literal * (Envoy echoes the origin)"),
}


def route_name(policy):
    return f"httproute/gateway-conformance-infra/http-with-{policy.name}/rule/0"


def plugin_configuration(policies):
    return {"routes": {route_name(p): p.cors for p in policies}}


@pytest.fixture(scope="module")
def gateway():
    yield from envoy.conformance_gateway([(route_name(p), p.path_prefix) for p in POLICIES],
                                         plugin_configuration(POLICIES))


def test_the_transcription_has_every_case_and_policy_and_two_of_four_differ():
    assert len(POLICIES) == 2 and len(CASES) == 4 and len({c.id for c in CASES}) == 4
    assert set(INTENTIONAL_DIFFERENCES) <= {c.id for c in CASES} and len(INTENTIONAL_DIFFERENCES) == 2


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_each_pasted_policy_loads_unchanged(cors_explain, policy):
    """Neither has `maxAge` nor a `*` among other items, so the fields alone cannot tell them from
    the Gateway API's; they are read as the Gateway API's, which differs only in sending
    `Access-Control-Max-Age: 5`, what browsers assume without it (docs/configuration.md)."""
    accepted, message = cors_explain.verdict(plugin_configuration([policy]))
    assert accepted, message


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_envoy_gateway_e2e_case(gateway, case):
    client, port = gateway
    status, headers = client.send(port, case.request_method, case.request_path,
                                  case.request_headers + (("X-Echo-Set-Header", ""),),
                                  host=f"127.0.0.1:{port}")
    complaints = compare_round_trip(case, status, headers)
    expected, _why = INTENTIONAL_DIFFERENCES.get(case.id, ([], ""))
    assert complaints == expected, f"{case.name}\n{status} {headers}"

