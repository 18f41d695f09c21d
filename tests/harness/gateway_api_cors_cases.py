"""The Gateway API conformance test `HTTPRouteCORS`, transcribed: its HTTPRoute rules and its 17 cases.

Source: kubernetes-sigs/gateway-api at commit ab1de575126aec3df6d69d84a6b4844777eeb0dd (the last
one to touch these files; "CORS: clarify API documentation and remove conformance tests for
credentialed requests", #4663):
- conformance/tests/httproute-cors.yaml: four HTTPRoutes, five rules, each with a `CORS` filter;
- conformance/tests/httproute-cors.go: `testCases`, each an `http.ExpectedResponse`, checked by
  `http.MakeRequestAndExpectEventuallyConsistentResponse` (conformance/utils/http/http.go,
  `CompareRoundTrip`); tests/test_gateway_api_cors.py replays that comparison.

Only the data lives here, field for field as the Go test writes it; what we make of it (route
names, the plugin configuration, the documented difference) is in the test module.
"""

from dataclasses import dataclass, field
from textwrap import dedent

import yaml

SOURCE = "kubernetes-sigs/gateway-api@ab1de575126aec3df6d69d84a6b4844777eeb0dd"

# `confsuite.InfrastructureNamespace` (conformance/utils/suite/consts.go): the namespace the echo
# backend reports; a case whose `Namespace` is this expects the backend to have answered.
INFRA_NAMESPACE = "gateway-conformance-infra"


@dataclass(frozen=True)
class Rule:
    """One rule of an HTTPRoute: its `PathPrefix` match and its `cors` filter, in Gateway API form."""
    httproute: str
    index: int
    path_prefix: str
    cors: dict


def cors_block(text):
    """A `cors:` block, pasted from the upstream project's .yaml as it is written there."""
    return yaml.safe_load(dedent(text))


# conformance/tests/httproute-cors.yaml, in file order. Every rule's backendRef is
# infra-backend-v1:8080, the echo server.
RULES = [
    # httproute-cors.yaml: HTTPRoute cors-multiple-origins-methods-headers, rules[0]
    Rule("cors-multiple-origins-methods-headers", 0, "/cors-1", cors_block("""
        allowOrigins:
        - "https://www.foo.com"
        - "https://*.bar.com"
        allowMethods:
        - GET
        - OPTIONS
        allowHeaders:
        - "x-header-1"
        - "x-header-2"
        exposeHeaders:
        - "x-header-3"
        - "x-header-4"
        allowCredentials: true
        maxAge: 3600
    """)),
    # httproute-cors.yaml: HTTPRoute cors-wildcard-methods, rules[0]
    Rule("cors-wildcard-methods", 0, "/cors-2", cors_block("""
        allowOrigins:
        - "https://www.foo.com"
        allowMethods: ["*"]
    """)),
    # httproute-cors.yaml: HTTPRoute cors-wildcard-origin, rules[0]
    Rule("cors-wildcard-origin", 0, "/cors-wildcard-origin", cors_block("""
        allowOrigins:
        - "*"
        allowMethods: ["PUT"]
        allowCredentials: false
    """)),
    # httproute-cors.yaml: HTTPRoute cors-wildcard-methods-headers, rules[0]
    Rule("cors-wildcard-methods-headers", 0, "/cors-wildcard-methods-headers", cors_block("""
        allowOrigins:
        - "*"
        allowMethods: ["*"]
        allowHeaders: ["*"]
        allowCredentials: true
    """)),
    # httproute-cors.yaml: HTTPRoute cors-wildcard-methods-headers, rules[1]
    Rule("cors-wildcard-methods-headers", 1, "/cors-wildcard-methods-headers-unauth", cors_block("""
        allowOrigins:
        - "*"
        allowMethods: ["*"]
        allowHeaders: ["*"]
        allowCredentials: false
    """)),
]


@dataclass(frozen=True)
class Case:
    """One `http.ExpectedResponse` of the Go test. Field names follow the Go struct:
    `request_*` is `Request`; `expected_request` is `ExpectedRequest` (None: the Go field is nil,
    so the backend must see the request itself); `namespace` is `Namespace`; the rest is
    `Response` (`StatusCode` folded into `status_codes` as `MakeRequest` does)."""
    name: str
    id: str
    request_method: str
    request_path: str
    request_headers: tuple
    namespace: str
    status_codes: tuple
    expected_request: dict = None
    headers: dict = field(default_factory=dict)
    valid_header_values: dict = field(default_factory=dict)
    absent_headers: tuple = ()
    ignore_whitespace: bool = False


# The `ExpectedRequest` of every preflight case: Host, Path, Headers empty, Method OPTIONS
# ("The response body is empty because the request is a preflight request").
PREFLIGHT_EXPECTED_REQUEST = {"host": "", "method": "OPTIONS", "path": ""}

ORIGIN = "Origin"
ACRM = "access-control-request-method"
ACRH = "access-control-request-headers"

CASES = [
    # httproute-cors.go: "CORS preflight request from an exact matching origin should be allowed"
    Case(
        name="CORS preflight request from an exact matching origin should be allowed",
        id="01-preflight-exact-origin",
        request_method="OPTIONS", request_path="/cors-1",
        request_headers=((ORIGIN, "https://www.foo.com"), (ACRM, "GET"), (ACRH, "x-header-1, x-header-2")),
        expected_request=PREFLIGHT_EXPECTED_REQUEST, namespace="",
        status_codes=(200, 204),
        valid_header_values={
            "access-control-allow-origin": ["https://www.foo.com"],
            "access-control-allow-methods": ["GET, OPTIONS", "OPTIONS, GET"],
            "access-control-allow-headers": ["x-header-1, x-header-2", "x-header-2, x-header-1"],
            "access-control-expose-headers": ["x-header-3, x-header-4", "x-header-4, x-header-3"],
            "access-control-max-age": ["3600"],
            "access-control-allow-credentials": ["true"],
        },
        ignore_whitespace=True,
    ),
    # httproute-cors.go: "CORS preflight request from a wildcard matching origin should be allowed"
    Case(
        name="CORS preflight request from a wildcard matching origin should be allowed",
        id="02-preflight-wildcard-origin",
        request_method="OPTIONS", request_path="/cors-1",
        request_headers=((ORIGIN, "https://www.bar.com"), (ACRM, "GET"), (ACRH, "x-header-1, x-header-2")),
        expected_request=PREFLIGHT_EXPECTED_REQUEST, namespace="",
        status_codes=(200, 204),
        valid_header_values={
            "access-control-allow-origin": ["https://www.bar.com"],
            "access-control-allow-methods": ["GET, OPTIONS", "OPTIONS, GET"],
            "access-control-allow-headers": ["x-header-1, x-header-2", "x-header-2, x-header-1"],
            "access-control-expose-headers": ["x-header-3, x-header-4", "x-header-4, x-header-3"],
            "access-control-max-age": ["3600"],
            "access-control-allow-credentials": ["true"],
        },
        ignore_whitespace=True,
    ),
    # httproute-cors.go: "CORS preflight request from a wildcard matching any number of periods
    # left to '*' should be allowed"
    Case(
        name="CORS preflight request from a wildcard matching any number of periods left to '*' should be allowed",
        id="03-preflight-wildcard-origin-several-labels",
        request_method="OPTIONS", request_path="/cors-1",
        request_headers=((ORIGIN, "https://xpto.www.bar.com"), (ACRM, "GET"), (ACRH, "x-header-1, x-header-2")),
        expected_request=PREFLIGHT_EXPECTED_REQUEST, namespace="",
        status_codes=(200, 204),
        valid_header_values={
            "access-control-allow-origin": ["https://xpto.www.bar.com"],
            "access-control-allow-methods": ["GET, OPTIONS", "OPTIONS, GET"],
            "access-control-allow-headers": ["x-header-1, x-header-2", "x-header-2, x-header-1"],
            "access-control-expose-headers": ["x-header-3, x-header-4", "x-header-4, x-header-3"],
            "access-control-max-age": ["3600"],
            "access-control-allow-credentials": ["true"],
        },
        ignore_whitespace=True,
    ),
    # httproute-cors.go: "CORS preflight request from a non-matching origin should not be allowed"
    Case(
        name="CORS preflight request from a non-matching origin should not be allowed",
        id="04-preflight-non-matching-origin",
        request_method="OPTIONS", request_path="/cors-1",
        request_headers=((ORIGIN, "https://foobar.com"), (ACRM, "GET")),
        expected_request=PREFLIGHT_EXPECTED_REQUEST, namespace="",
        status_codes=(200, 204, 403),
        absent_headers=("access-control-allow-origin",),
    ),
    # httproute-cors.go: "Simple request from an exact matching origin should be allowed"
    Case(
        name="Simple request from an exact matching origin should be allowed",
        id="05-simple-exact-origin",
        request_method="GET", request_path="/cors-1",
        request_headers=((ORIGIN, "https://www.foo.com"), (ACRM, "GET"), (ACRH, "x-header-1, x-header-2")),
        namespace=INFRA_NAMESPACE,
        status_codes=(200,),
        headers={"access-control-allow-origin": "https://www.foo.com"},
    ),
    # httproute-cors.go: "Simple request from a wildcard matching origin should be allowed"
    Case(
        name="Simple request from a wildcard matching origin should be allowed",
        id="06-simple-wildcard-origin",
        request_method="GET", request_path="/cors-1",
        request_headers=((ORIGIN, "https://www.bar.com"), (ACRM, "GET"), (ACRH, "x-header-1, x-header-2")),
        namespace=INFRA_NAMESPACE,
        status_codes=(200,),
        headers={"access-control-allow-origin": "https://www.bar.com"},
    ),
    # httproute-cors.go: "Simple request from a non-matching origin should not be allowed"
    # (no StatusCode: MakeRequest defaults StatusCodes to [200])
    Case(
        name="Simple request from a non-matching origin should not be allowed",
        id="07-simple-non-matching-origin",
        request_method="GET", request_path="/cors-1",
        request_headers=((ORIGIN, "https://foobar.com"), (ACRM, "GET")),
        namespace=INFRA_NAMESPACE,
        status_codes=(200,),
        absent_headers=("access-control-allow-origin",),
    ),
    # httproute-cors.go: "CORS preflight request with POST method should be allowed by allowMethods
    # with wildcard"
    Case(
        name="CORS preflight request with POST method should be allowed by allowMethods with wildcard",
        id="08-preflight-wildcard-methods",
        request_method="OPTIONS", request_path="/cors-2",
        request_headers=((ORIGIN, "https://www.foo.com"), (ACRM, "POST")),
        expected_request=PREFLIGHT_EXPECTED_REQUEST, namespace="",
        status_codes=(200, 204),
        valid_header_values={"access-control-allow-methods": ["POST", "*"]},
        headers={"access-control-allow-origin": "https://www.foo.com"},
        absent_headers=("access-control-allow-credentials",),
    ),
    # httproute-cors.go: "CORS preflight request should not receive access-control-allow-credentials
    # header without access-control-allow-credentials set to true"
    Case(
        name="CORS preflight request should not receive access-control-allow-credentials header without "
             "access-control-allow-credentials set to true",
        id="09-preflight-no-credentials-header",
        request_method="OPTIONS", request_path="/cors-2",
        request_headers=((ORIGIN, "https://www.foo.com"), (ACRM, "POST")),
        expected_request=PREFLIGHT_EXPECTED_REQUEST, namespace="",
        status_codes=(200, 204),
        absent_headers=("Access-Control-Allow-Credentials",),
    ),
    # httproute-cors.go: "CORS preflight request from a wildcard origin should return header with '*'
    # or with the requested Origin"
    Case(
        name="CORS preflight request from a wildcard origin should return header with '*' or with the requested Origin",
        id="10-preflight-any-origin",
        request_method="OPTIONS", request_path="/cors-wildcard-origin",
        request_headers=((ORIGIN, "https://foobar.com"), (ACRM, "PUT")),
        expected_request=PREFLIGHT_EXPECTED_REQUEST, namespace="",
        status_codes=(200, 204),
        valid_header_values={
            "access-control-allow-origin": ["https://foobar.com", "*"],
            "access-control-allow-methods": ["PUT"],
        },
        absent_headers=("Access-Control-Allow-Credentials",),
    ),
    # httproute-cors.go: "CORS preflight request from a wildcard origin containing a port should
    # return header with '*' or with the requested Origin"
    Case(
        name="CORS preflight request from a wildcard origin containing a port should return header with '*' "
             "or with the requested Origin",
        id="11-preflight-any-origin-with-port",
        request_method="OPTIONS", request_path="/cors-wildcard-origin",
        request_headers=((ORIGIN, "https://foobar.com:12345"), (ACRM, "PUT")),
        expected_request=PREFLIGHT_EXPECTED_REQUEST, namespace="",
        status_codes=(200, 204),
        valid_header_values={
            "access-control-allow-origin": ["https://foobar.com:12345", "*"],
            "access-control-allow-methods": ["PUT"],
        },
        absent_headers=("Access-Control-Allow-Credentials",),
    ),
    # httproute-cors.go: "Request from a wildcard origin containing a port should return header with
    # '*' or with the requested Origin"
    Case(
        name="Request from a wildcard origin containing a port should return header with '*' or with the requested Origin",
        id="12-put-any-origin-with-port",
        request_method="PUT", request_path="/cors-wildcard-origin",
        request_headers=((ORIGIN, "https://foobar.com:12345"),),
        namespace=INFRA_NAMESPACE,
        status_codes=(200,),
        valid_header_values={"access-control-allow-origin": ["https://foobar.com:12345", "*"]},
    ),
    # httproute-cors.go: "Simple request from a wildcard origin should return header with '*' or with
    # the requested Origin"
    Case(
        name="Simple request from a wildcard origin should return header with '*' or with the requested Origin",
        id="13-put-any-origin",
        request_method="PUT", request_path="/cors-wildcard-origin",
        request_headers=((ORIGIN, "https://foobar.com"),),
        namespace=INFRA_NAMESPACE,
        status_codes=(200,),
        valid_header_values={"access-control-allow-origin": ["https://foobar.com", "*"]},
        absent_headers=("Access-Control-Allow-Credentials",),
    ),
    # httproute-cors.go: "CORS preflight request requesting specific method and headers should be
    # allowed and always echo the origin with allowCredentials set to true"
    Case(
        name="CORS preflight request requesting specific method and headers should be allowed and always echo "
             "the origin with allowCredentials set to true",
        id="14-preflight-any-origin-with-credentials",
        request_method="OPTIONS", request_path="/cors-wildcard-methods-headers",
        request_headers=((ORIGIN, "https://other.foo.com"), (ACRM, "PUT"), (ACRH, "x-header-1, x-header-2")),
        expected_request=PREFLIGHT_EXPECTED_REQUEST, namespace="",
        status_codes=(200, 204),
        valid_header_values={
            "access-control-allow-origin": ["https://other.foo.com"],
            "access-control-allow-methods": ["PUT"],
            "access-control-allow-headers": ["x-header-1, x-header-2", "x-header-2, x-header-1"],
            "access-control-allow-credentials": ["true"],
        },
        ignore_whitespace=True,
    ),
    # httproute-cors.go: "CORS preflight request requesting specific method and headers should hide
    # access-control-allow-credentials headers with allowCredentials set to false"
    Case(
        name="CORS preflight request requesting specific method and headers should hide "
             "access-control-allow-credentials headers with allowCredentials set to false",
        id="15-preflight-any-origin-without-credentials",
        request_method="OPTIONS", request_path="/cors-wildcard-methods-headers-unauth",
        request_headers=((ORIGIN, "https://other.foo.com"), (ACRM, "PUT"), (ACRH, "x-header-1, x-header-2")),
        expected_request=PREFLIGHT_EXPECTED_REQUEST, namespace="",
        status_codes=(200, 204),
        valid_header_values={
            "access-control-allow-origin": ["https://other.foo.com", "*"],
            "access-control-allow-methods": ["PUT", "*"],
            "access-control-allow-headers": ["x-header-1, x-header-2", "x-header-2, x-header-1", "*"],
        },
        absent_headers=("access-control-allow-credentials",),
        ignore_whitespace=True,
    ),
    # httproute-cors.go: "CORS request should receive access-control-allow-credentials header with
    # allowCredentials set to true"
    Case(
        name="CORS request should receive access-control-allow-credentials header with allowCredentials set to true",
        id="16-get-any-origin-with-credentials",
        request_method="GET", request_path="/cors-wildcard-methods-headers",
        request_headers=((ORIGIN, "https://other.foo.com"),),
        namespace=INFRA_NAMESPACE,
        status_codes=(200,),
        valid_header_values={
            "access-control-allow-origin": ["https://other.foo.com"],
            "access-control-allow-credentials": ["true"],
        },
    ),
    # httproute-cors.go: "CORS request should not receive access-control-allow-credentials header
    # without allowCredentials set to true"
    Case(
        name="CORS request should not receive access-control-allow-credentials header without allowCredentials "
             "set to true",
        id="17-get-any-origin-without-credentials",
        request_method="GET", request_path="/cors-wildcard-methods-headers-unauth",
        request_headers=((ORIGIN, "https://other.foo.com"),),
        namespace=INFRA_NAMESPACE,
        status_codes=(200,),
        valid_header_values={"access-control-allow-origin": ["https://other.foo.com", "*"]},
        absent_headers=("access-control-allow-credentials",),
    ),
]
