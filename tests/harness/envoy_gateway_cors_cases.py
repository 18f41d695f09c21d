"""Envoy Gateway's end-to-end CORS test `CORSFromSecurityPolicy`, transcribed: its SecurityPolicies
and its four cases.

Source: envoyproxy/gateway at commit d32f28294245e454d20f81d323d626a90e660c1e:
- test/e2e/testdata/cors-security-policy.yaml: two HTTPRoutes (`PathPrefix` /cors-exact and
  /cors-wildcard), each targeted by a SecurityPolicy with a `cors` block;
- test/e2e/tests/cors.go: `runCORStest`, four `http.ExpectedResponse`s checked with the Gateway API
  conformance utilities (`http.MakeRequestAndExpectEventuallyConsistentResponse`, the same
  `CompareRoundTrip` tests/test_gateway_api_cors.py replays). A case without `StatusCodes`
  expects 200, as `MakeRequest` defaults it.

These are the only CORS cases under test/e2e/testdata and test/e2e/tests (`git ls-tree` of that
commit: cors-security-policy.yaml and cors.go). Only the data lives here; what we make of it is in
tests/test_envoy_gateway_cors.py.
"""

from dataclasses import dataclass

from tests.harness.gateway_api_cors_cases import ACRH, ACRM, ORIGIN, PREFLIGHT_EXPECTED_REQUEST, Case, cors_block

SOURCE = "envoyproxy/gateway@d32f28294245e454d20f81d323d626a90e660c1e"


@dataclass(frozen=True)
class Policy:
    """One SecurityPolicy: its name, the `PathPrefix` of the HTTPRoute it targets, its `spec.cors`."""
    name: str
    path_prefix: str
    cors: dict


# test/e2e/testdata/cors-security-policy.yaml, in file order.
POLICIES = [
    # SecurityPolicy cors-exact -> HTTPRoute http-with-cors-exact (PathPrefix /cors-exact)
    Policy("cors-exact", "/cors-exact", cors_block("""
        allowOrigins:
        - "https://www.foo.com"
        - "https://www.bar.com"
        - "https://*.foobar.com"
        allowMethods:
        - GET
        - POST
        - PUT
        - PATCH
        - DELETE
        - OPTIONS
        allowHeaders:
        - "x-header-1"
        - "x-header-2"
        exposeHeaders:
        - "x-header-3"
        - "x-header-4"
    """)),
    # SecurityPolicy cors-wildcard -> HTTPRoute http-with-cors-wildcard (PathPrefix /cors-wildcard)
    Policy("cors-wildcard", "/cors-wildcard", cors_block("""
        allowOrigins:
        - "*"
        allowMethods:
        - "*"
        allowHeaders:
        - "*"
        exposeHeaders:
        - "*"
    """)),
]

PREFLIGHT_HEADERS = ((ACRM, "GET"), (ACRH, "x-header-1, x-header-2"))

# test/e2e/tests/cors.go, the t.Run calls in order.
CASES = [
    Case(
        name="should enable cors with Allow Origin Exact",
        id="1-preflight-exact-origin",
        request_method="OPTIONS", request_path="/cors-exact",
        request_headers=((ORIGIN, "https://www.foo.com"),) + PREFLIGHT_HEADERS,
        expected_request=PREFLIGHT_EXPECTED_REQUEST, namespace="",
        status_codes=(200,),
        headers={
            "access-control-allow-origin": "https://www.foo.com",
            "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
            "access-control-allow-headers": "x-header-1, x-header-2",
            "access-control-expose-headers": "x-header-3, x-header-4",
        },
    ),
    Case(
        name="should enable cors with Allow Origin Regex",
        id="2-preflight-wildcard-origin",
        request_method="OPTIONS", request_path="/cors-exact",
        request_headers=((ORIGIN, "https://anydomain.foobar.com"),) + PREFLIGHT_HEADERS,
        expected_request=PREFLIGHT_EXPECTED_REQUEST, namespace="",
        status_codes=(200,),
        headers={
            "access-control-allow-origin": "https://anydomain.foobar.com",
            "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
            "access-control-allow-headers": "x-header-1, x-header-2",
            "access-control-expose-headers": "x-header-3, x-header-4",
        },
    ),
    Case(
        name="should not contain cors headers when Origin not registered",
        id="3-preflight-unknown-origin",
        request_method="OPTIONS", request_path="/cors-exact",
        request_headers=((ORIGIN, "https://unknown.foo.com"),) + PREFLIGHT_HEADERS,
        expected_request=PREFLIGHT_EXPECTED_REQUEST, namespace="",
        status_codes=(200,),
        absent_headers=("access-control-allow-origin",),
    ),
    Case(
        name="should enable cors with wildcard matching",
        id="4-preflight-any-origin",
        request_method="OPTIONS", request_path="/cors-wildcard",
        request_headers=((ORIGIN, "https://foo.bar.com"),) + PREFLIGHT_HEADERS,
        expected_request=PREFLIGHT_EXPECTED_REQUEST, namespace="",
        status_codes=(200,),
        headers={
            "access-control-allow-origin": "https://foo.bar.com",
            "access-control-allow-methods": "GET",
            "access-control-allow-headers": "x-header-1, x-header-2",
            "access-control-expose-headers": "*",
        },
    ),
]
