"""Istio's CORS tests, transcribed: the policies of its route-translation and validation unit tests,
and the integration test that sends a preflight.

Source: istio/istio at commit 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c:
- pilot/pkg/networking/core/route/route_internal_test.go: `TestTranslateCORSPolicy` and
  `TestTranslateCORSPolicyForwardNotMatchingPreflights` (the two tests of `TranslateCORSPolicy`,
  route.go);
- pkg/config/validation/validation_test.go: `TestValidateCORSPolicy`, six policies and whether
  Istio accepts each (`validateCORSPolicy`, what never reaches Envoy);
- tests/integration/pilot/common/routing.go: the traffic test "cors", a VirtualService and three
  calls (a preflight, a GET, a GET without Origin), each checked with `check.OK()` (status 200)
  and `check.ResponseHeader(s)` (the first value of each header equals the expected string; ""
  means absent).

The Go structs are written as the YAML a VirtualService holds (`durationpb.Duration{Seconds: 2}`
is "2s"). Only the data lives here; what we make of it is in tests/test_istio_cors.py.
"""

from dataclasses import dataclass, field

SOURCE = "istio/istio@86c9f01fd735fb01d8192f5bcaf0d424afb7f14c"

ORIGINS_OF_THE_UNIT_TESTS = [{"exact": "exact"}, {"prefix": "prefix"}, {"regex": "regex"}]


@dataclass(frozen=True)
class LoadCase:
    """A `corsPolicy` and whether Istio accepts it (translation tests: always; it translates it)."""
    test: str
    name: str
    cors: dict
    istio_accepts: bool


LOAD_CASES = [
    LoadCase("TestTranslateCORSPolicy", "translate", {"allowOrigins": ORIGINS_OF_THE_UNIT_TESTS}, True),
    LoadCase("TestTranslateCORSPolicyForwardNotMatchingPreflights", "translate-ignore",
             {"allowOrigins": ORIGINS_OF_THE_UNIT_TESTS, "unmatchedPreflights": "IGNORE"}, True),
    LoadCase("TestValidateCORSPolicy", "valid", {
        "allowMethods": ["GET", "POST"], "allowHeaders": ["header1", "header2"],
        "exposeHeaders": ["header3"], "maxAge": "2s"}, True),
    LoadCase("TestValidateCORSPolicy", "bad method", {
        "allowMethods": ["GET", "PUTT"], "allowHeaders": ["header1", "header2"],
        "exposeHeaders": ["header3"], "maxAge": "2s"}, False),
    LoadCase("TestValidateCORSPolicy", "bad header", {
        "allowMethods": ["GET", "POST"], "allowHeaders": ["header1", "header2"],
        "exposeHeaders": [""], "maxAge": "2s"}, False),
    LoadCase("TestValidateCORSPolicy", "bad max age", {
        "allowMethods": ["GET", "POST"], "allowHeaders": ["header1", "header2"],
        "exposeHeaders": ["header3"], "maxAge": "2.000000042s"}, False),
    LoadCase("TestValidateCORSPolicy", "empty matchType AllowOrigins", {
        "allowOrigins": [{"exact": ""}, {"prefix": ""}, {"regex": ""}],
        "allowMethods": ["GET", "POST"], "allowHeaders": ["header1", "header2"],
        "exposeHeaders": ["header3"], "maxAge": "2s"}, False),
    LoadCase("TestValidateCORSPolicy", "non empty matchType AllowOrigins", {
        "allowOrigins": ORIGINS_OF_THE_UNIT_TESTS,
        "allowMethods": ["GET", "POST"], "allowHeaders": ["header1", "header2"],
        "exposeHeaders": ["header3"], "maxAge": "2s"}, True),
]

# routing.go, traffic test "cors": the VirtualService's `corsPolicy`, as written there.
INTEGRATION_CORS = {
    "allowOrigins": [{"exact": "cors.com"}],
    "allowMethods": ["POST", "GET"],
    "allowCredentials": False,
    "allowHeaders": ["X-Foo-Bar", "X-Foo-Baz"],
    "maxAge": "24h",
}


@dataclass(frozen=True)
class Call:
    """One child `TrafficCall`: the request (method, headers) and what `check` expects: status 200
    and, per header, its first value ("" for absent)."""
    name: str
    method: str
    request_headers: tuple
    response_headers: dict = field(default_factory=dict)


INTEGRATION_CALLS = [
    Call("preflight", "OPTIONS", (("Origin", "cors.com"), ("Access-Control-Request-Method", "DELETE")), {
        "Access-Control-Allow-Origin": "cors.com",
        "Access-Control-Allow-Methods": "POST,GET",
        "Access-Control-Allow-Headers": "X-Foo-Bar,X-Foo-Baz",
        "Access-Control-Max-Age": "86400",
    }),
    Call("get", "GET", (("Origin", "cors.com"),), {"Access-Control-Allow-Origin": "cors.com"}),
    Call("get no origin match", "GET", (), {"Access-Control-Allow-Origin": ""}),
]
