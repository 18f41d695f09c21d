"""The filter first in a real filter chain: it answers preflights before authentication and
rate limiting can refuse them, and every reply that comes back through it — from the upstream,
from jwt_authn (401), rbac (403), local_ratelimit (429), or from the router (direct_response,
redirect 301, 503 for a dead cluster, 404 when no route matches) — carries exactly one
Access-Control-Allow-Origin for an allowed origin, and none for a refused one.

One Envoy hosts every listener of this module (see docs/filter-chain.md), once per build of the
filter (Wasm, native)."""

import functools

import pytest
import yaml

from tests.harness.chains import jwt, jwt_authn, local_ratelimit, rbac_deny_all
from tests.harness.envoy import (ROOT, Envoy, catch_all, cors_filter, cors_headers, free_port, header_values, listener,
                         envoy_cors_filter, envoy_cors_route_config, preflight as any_preflight, request, route,
                         upstream_cluster, vary_items, with_upstream)

ALLOWED = "https://app.example"
REFUSED = "https://evil.example"
POLICY = {
    "allow_origins": [ALLOWED],
    "allow_methods": "GET, POST, PUT",
    "allow_headers": "content-type, authorization, x-custom",
    "expose_headers": "x-total",
    "allow_credentials": True,
    "max_age": 600,
}
# Fallback where there is no route entry (no-route 404, direct responses): routes[name], then
# virtual_hosts[name], then policy.
VHOST_ORIGIN = "https://vhost.example"
ROUTE_ORIGIN = "https://route.example"
META_ORIGIN = "https://metadata.example"
FALLBACK_CONFIG = {
    "route_metadata_namespace": "cors",
    "policy": POLICY,
    "virtual_hosts": {"vh-special": {"allow_origins": [VHOST_ORIGIN], "allow_methods": "GET"}},
    "routes": {"named-direct": {"allow_origins": [ROUTE_ORIGIN], "allow_methods": "GET"}},
}
# What Envoy's own CORS filter (envoy_cors) would allow on the route where an operator left it on.
ENVOY_CORS_ONLY = "https://envoy-cors-only.example"
ENVOY_CORS_POLICY = {
    "allow_origin_string_match": [{"exact": ALLOWED}, {"exact": ENVOY_CORS_ONLY}],
    "allow_methods": "GET, DELETE",
    "allow_headers": "x-envoy-cors-only",
    "expose_headers": "x-envoy-cors-exposed",
    "max_age": "99",
    "allow_credentials": False,
}


def envoy_cors_vhost():
    """Envoy's CORS filter given ENVOY_CORS_POLICY on the only route."""
    return catch_all("envoy_cors", [route("envoy_cors", "/", typed_per_filter_config=envoy_cors_route_config(ENVOY_CORS_POLICY))])


def local_routes():
    """Router-made replies: direct response, redirect, a dead cluster (503); other paths: 404."""
    return [{"name": "local", "domains": ["*"], "routes": [
        {"name": "direct", "match": {"prefix": "/direct"},
         "direct_response": {"status": 200, "body": {"inline_string": "direct body"}}},
        {"name": "redirect", "match": {"prefix": "/redirect"}, "redirect": {"path_redirect": "/elsewhere"}},
        route("dead", "/dead", cluster="dead"),
        route("upstream", "/upstream"),
    ]}]


@pytest.fixture(scope="module")
def envoy(build):
    ports = {name: free_port() for name in ["jwt", "rbac", "ratelimit", "local", "fallback", "envoy_cors"]}
    ours = cors_filter(build, {"policy": POLICY})
    listeners = [
        listener("jwt", ports["jwt"], [ours, jwt_authn()], catch_all("main")),
        listener("rbac", ports["rbac"], [ours, rbac_deny_all()], catch_all("main")),
        listener("ratelimit", ports["ratelimit"], [ours, local_ratelimit()], catch_all("main")),
        listener("local", ports["local"], [ours], local_routes()),
        listener("fallback", ports["fallback"], [cors_filter(build, FALLBACK_CONFIG)], [
            {"name": "vh-special", "domains": ["special.local"], "routes": [
                {"name": "named-direct", "match": {"prefix": "/named-direct"},
                 "direct_response": {"status": 200, "body": {"inline_string": "named"}}},
                # Route metadata comes before every name-keyed map, on direct responses too.
                {"name": "named-direct", "match": {"prefix": "/meta-direct"},
                 "metadata": {"filter_metadata": {"cors": {"allow_origins": [META_ORIGIN]}}},
                 "direct_response": {"status": 200, "body": {"inline_string": "meta"}}},
                {"name": "unnamed-direct", "match": {"prefix": "/direct"},
                 "direct_response": {"status": 200, "body": {"inline_string": "direct"}}},
            ]},
            {"name": "vh-plain", "domains": ["*"], "routes": [
                {"name": "plain-direct", "match": {"prefix": "/direct"},
                 "direct_response": {"status": 200, "body": {"inline_string": "direct"}}},
            ]},
        ]),
        listener("envoy_cors", ports["envoy_cors"], [ours, envoy_cors_filter()], envoy_cors_vhost()),
    ]
    # `dead` points at a port nobody listens on: the router answers 503.
    e = Envoy(with_upstream(listeners, [upstream_cluster(free_port(), name="dead")]))
    e.ports = ports
    e.build = build
    # Take the rate limiter's only token with a request that is not CORS (no Origin): from now
    # on every request through that listener is over the limit.
    status, _, _ = request(ports["ratelimit"], "GET", "/drain")
    assert status == 200
    yield e
    e.stop()
    log = e.log()
    assert "panicked" not in log and "RuntimeError" not in log


# The preflight of a PUT to /api with content-type and x-custom, unless told otherwise.
preflight = functools.partial(any_preflight, method="PUT", request_headers="content-type, x-custom", path="/api")


def actual(port, origin, path="/api", method="GET", extra=(), host="test.local"):
    return request(port, method, path, [("origin", origin), *extra], host=host)


def assert_allowed_actual(headers, origin=ALLOWED, credentials=True):
    assert header_values(headers, "access-control-allow-origin") == [origin]
    assert "origin" in vary_items(headers)
    if credentials:
        assert header_values(headers, "access-control-allow-credentials") == ["true"]


def assert_no_cors(headers):
    cors = cors_headers(headers)
    assert "access-control-allow-origin" not in cors, cors
    assert "access-control-allow-credentials" not in cors, cors


def assert_answered_by_us(status, headers, origin=ALLOWED):
    """Our preflight answer: 200, the policy's headers once each, nothing from behind us."""
    assert status == 200
    cors = cors_headers(headers)
    assert cors["access-control-allow-origin"] == [origin]
    assert cors["access-control-allow-methods"] == ["GET, POST, PUT"]
    assert cors["access-control-allow-headers"] == ["content-type, authorization, x-custom"]
    assert cors["access-control-max-age"] == ["600"]
    assert cors["access-control-allow-credentials"] == ["true"]
    assert header_values(headers, "x-upstream") == []


# --- Chains: the preflight never reaches the filter behind us --------------------------------

CHAIN_CASES = {
    # listener: (expected status of an actual request from an allowed origin, the later
    #            filter's counter that must not move on a preflight)
    "jwt": (401, "http.jwt.jwt_authn.denied"),
    "rbac": (403, "http.rbac.rbac.denied"),
    "ratelimit": (429, "limited.http_local_rate_limit.rate_limited"),
}


@pytest.mark.parametrize("chain", CHAIN_CASES)
def test_allowed_preflight_is_answered_before_the_later_filter(envoy, chain):
    _, later_counter = CHAIN_CASES[chain]
    before = envoy.counter(later_counter)
    status, headers, _ = preflight(envoy.ports[chain], ALLOWED)
    assert_answered_by_us(status, headers)
    # The later filter refused the actual request below (its counter moves); the preflight
    # never got there.
    actual(envoy.ports[chain], ALLOWED)
    after_actual = envoy.counter(later_counter)
    assert after_actual == before + 1
    preflight(envoy.ports[chain], ALLOWED)
    assert envoy.counter(later_counter) == after_actual


@pytest.mark.parametrize("chain", CHAIN_CASES)
def test_refusal_by_a_later_filter_carries_one_acao_for_an_allowed_origin(envoy, chain):
    expected_status, _ = CHAIN_CASES[chain]
    status, headers, body = actual(envoy.ports[chain], ALLOWED)
    assert status == expected_status, body
    assert_allowed_actual(headers)
    assert header_values(headers, "access-control-expose-headers") == ["x-total"]


@pytest.mark.parametrize("chain", CHAIN_CASES)
def test_refusal_by_a_later_filter_carries_no_acao_for_a_refused_origin(envoy, chain):
    expected_status, _ = CHAIN_CASES[chain]
    status, headers, _ = actual(envoy.ports[chain], REFUSED)
    assert status == expected_status
    assert_no_cors(headers)
    assert "origin" in vary_items(headers)


@pytest.mark.parametrize("chain", CHAIN_CASES)
def test_refused_preflight_is_not_answered_by_us(envoy, chain):
    """A refused origin's preflight is forwarded (forward_not_matching_preflights), so the later
    filter refuses it, without any CORS header: the browser blocks the call."""
    expected_status, _ = CHAIN_CASES[chain]
    status, headers, _ = preflight(envoy.ports[chain], REFUSED)
    assert status == expected_status
    assert_no_cors(headers)


def test_jwt_valid_token_reaches_upstream_with_acao(envoy):
    status, headers, _ = actual(envoy.ports["jwt"], ALLOWED, extra=[("authorization", f"Bearer {jwt()}")])
    assert status == 200
    assert header_values(headers, "x-upstream") == ["hit"]
    assert_allowed_actual(headers)


def test_jwt_expired_token_gets_401_with_acao(envoy):
    status, headers, body = actual(envoy.ports["jwt"], ALLOWED,
                                   extra=[("authorization", f"Bearer {jwt(lifetime=-600)}")])
    assert status == 401, body
    assert b"expired" in body.lower()
    assert_allowed_actual(headers)


def test_rate_limit_still_answers_preflights_after_the_bucket_is_empty(envoy):
    for _ in range(3):
        status, headers, _ = preflight(envoy.ports["ratelimit"], ALLOWED)
        assert_answered_by_us(status, headers)
    status, headers, _ = actual(envoy.ports["ratelimit"], ALLOWED)
    assert status == 429


# --- Replies the router makes itself ---------------------------------------------------------

LOCAL_CASES = {
    "/direct": 200,
    "/redirect": 301,
    "/dead": 503,
    "/no-such-route": 404,
    "/upstream": 200,
}


@pytest.mark.parametrize("path", LOCAL_CASES)
def test_router_reply_carries_one_acao_for_an_allowed_origin(envoy, path):
    status, headers, _ = actual(envoy.ports["local"], ALLOWED, path=path)
    assert status == LOCAL_CASES[path]
    assert_allowed_actual(headers)
    if path == "/redirect":
        assert header_values(headers, "location") == ["http://test.local/elsewhere"]


@pytest.mark.parametrize("path", LOCAL_CASES)
def test_router_reply_carries_no_acao_for_a_refused_origin(envoy, path):
    status, headers, _ = actual(envoy.ports["local"], REFUSED, path=path)
    assert status == LOCAL_CASES[path]
    assert_no_cors(headers)
    assert "origin" in vary_items(headers)


@pytest.mark.parametrize("path", LOCAL_CASES)
def test_allowed_preflight_is_answered_whatever_the_route(envoy, path):
    status, headers, _ = preflight(envoy.ports["local"], ALLOWED, path=path)
    assert_answered_by_us(status, headers)


@pytest.mark.parametrize("path", ["/api", "/direct", "/no-such-route"])
def test_our_preflight_answer_has_each_header_once(envoy, path):
    """Our own reply passes through on_http_response_headers too: nothing is added twice."""
    for port in (envoy.ports["local"], envoy.ports["jwt"]):
        _, headers, _ = preflight(port, ALLOWED, path=path)
        names = [k for k, _ in headers if k.startswith("access-control-") or k == "vary"]
        assert len(names) == len(set(names)), headers
        assert header_values(headers, "vary") == ["Origin"]


# --- Policy selection without a route entry --------------------------------------------------

@pytest.mark.parametrize("host, path, allowed, refused", [
    # No route matches: no route name; the virtual host's policy applies where there is one…
    ("special.local", "/no-such-route", VHOST_ORIGIN, ALLOWED),
    # …and the top-level policy where the virtual host has none.
    ("plain.local", "/no-such-route", ALLOWED, VHOST_ORIGIN),
    # A direct response with a route name not in `routes`: virtual host policy.
    ("special.local", "/direct", VHOST_ORIGIN, ALLOWED),
    # A direct response whose route name is in `routes`: that policy first.
    ("special.local", "/named-direct", ROUTE_ORIGIN, VHOST_ORIGIN),
    # A direct response whose route carries a policy in its metadata: that policy, even though
    # its name is also in `routes`.
    ("special.local", "/meta-direct", META_ORIGIN, ROUTE_ORIGIN),
    # A direct response in a virtual host without a policy: the top-level policy.
    ("plain.local", "/direct", ALLOWED, ROUTE_ORIGIN),
])
def test_policy_falls_back_to_virtual_host_then_policy_without_route_entry(envoy, host, path, allowed, refused):
    port = envoy.ports["fallback"]
    if envoy.build == "native" and path == "/meta-direct":
        # The native build cannot read the route's metadata policy: CORS is off there
        # (docs/native.md), for the metadata's origin and the `routes` one alike.
        for origin in (allowed, refused):
            assert_no_cors(actual(port, origin, path=path, host=host)[1])
        return
    status, headers, _ = actual(port, allowed, path=path, host=host)
    assert status == (404 if path == "/no-such-route" else 200)
    assert header_values(headers, "access-control-allow-origin") == [allowed]
    assert "origin" in vary_items(headers)
    status, headers, _ = actual(port, refused, path=path, host=host)
    assert_no_cors(headers)
    status, headers, _ = preflight(port, allowed, path=path, method="GET", request_headers=None, host=host)
    assert status == 200
    assert header_values(headers, "access-control-allow-origin") == [allowed]


# --- Envoy's own CORS filter (envoy_cors) left on the same route, after ours ----------------------

def test_envoy_cors_after_ours_actual_request_gets_our_values_once(envoy):
    """On the response path ours runs last, and it sets or removes every CORS header: ours win."""
    status, headers, _ = actual(envoy.ports["envoy_cors"], ALLOWED)
    assert status == 200
    cors = cors_headers(headers)
    assert cors["access-control-allow-origin"] == [ALLOWED]
    assert cors["access-control-allow-credentials"] == ["true"]
    assert cors["access-control-expose-headers"] == ["x-total"]
    assert "origin" in vary_items(headers)
    for name, values in cors.items():
        assert len(values) == 1, (name, values)


def test_envoy_cors_after_ours_preflight_is_ours_alone(envoy):
    status, headers, _ = preflight(envoy.ports["envoy_cors"], ALLOWED)
    assert_answered_by_us(status, headers)
    cors = cors_headers(headers)
    for name, values in cors.items():
        assert len(values) == 1, (name, values)
    # Ours (x-total), never envoy_cors's (x-envoy-cors-exposed).
    assert cors["access-control-expose-headers"] == ["x-total"]


def test_envoy_cors_after_ours_cannot_allow_an_origin_we_refuse(envoy):
    """envoy_cors allows ENVOY_CORS_ONLY and answers its preflight (we forward refused
    preflights), but that reply comes back through us and loses its CORS headers."""
    status, headers, _ = actual(envoy.ports["envoy_cors"], ENVOY_CORS_ONLY)
    assert status == 200
    assert_no_cors(headers)
    assert "access-control-expose-headers" not in cors_headers(headers)
    status, headers, _ = preflight(envoy.ports["envoy_cors"], ENVOY_CORS_ONLY, method="DELETE", request_headers="x-envoy-cors-only")
    assert status == 200
    assert header_values(headers, "x-upstream") == []  # envoy_cors's own reply
    assert_no_cors(headers)
    assert "access-control-allow-methods" not in cors_headers(headers)


def test_envoy_cors_alone_would_have_allowed_envoy_cors_only():
    """Control for the test above: the same envoy_cors policy without ours does allow ENVOY_CORS_ONLY,
    so its absence above is our doing."""
    port = free_port()
    e = Envoy(with_upstream([listener("envoy_cors", port, [envoy_cors_filter()], envoy_cors_vhost())]))
    try:
        _, headers, _ = actual(port, ENVOY_CORS_ONLY)
        assert header_values(headers, "access-control-allow-origin") == [ENVOY_CORS_ONLY]
        status, headers, _ = preflight(port, ENVOY_CORS_ONLY, method="DELETE", request_headers="x-envoy-cors-only")
        assert status == 200 and header_values(headers, "x-upstream") == []
        assert header_values(headers, "access-control-allow-origin") == [ENVOY_CORS_ONLY]
    finally:
        e.stop()


# --- Every Envoy YAML we ship puts the filter first -----------------------------------------

def shipped_yaml():
    skip = {".venv", "target", "node_modules", ".git", "crds"}  # crds: Kubernetes schemas (1.4 MB)
    return sorted(p for p in ROOT.rglob("*.yaml") if not skip & set(p.relative_to(ROOT).parts))


def is_ours(http_filter):
    """Our filter, either build, also when wrapped in an ExtensionWithMatcher."""
    typed = http_filter.get("typed_config", {})
    if typed.get("@type", "").endswith("ExtensionWithMatcher"):
        return is_ours(typed.get("extension_config", {}))
    if typed.get("@type", "").endswith("DynamicModuleFilter"):
        return typed.get("filter_name") == "cors"
    code = typed.get("config", {}).get("vm_config", {}).get("code", {}).get("local", {}).get("filename", "")
    return http_filter.get("name") == "envoy.filters.http.wasm" and "cors_filter" in code


def connection_managers(node):
    if isinstance(node, dict):
        if node.get("@type", "").endswith("HttpConnectionManager"):
            yield node
        for v in node.values():
            yield from connection_managers(v)
    elif isinstance(node, list):
        for v in node:
            yield from connection_managers(v)


def test_every_shipped_envoy_yaml_puts_the_filter_first():
    checked = 0
    for path in shipped_yaml():
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "WasmPlugin":
                assert doc.get("spec", {}).get("phase") == "AUTHN", f"{path}: WasmPlugin needs phase: AUTHN"
                checked += 1
            for hcm in connection_managers(doc):
                filters = hcm.get("http_filters", [])
                if any(is_ours(f) for f in filters):
                    assert is_ours(filters[0]), f"{path}: {[f.get('name') for f in filters]}"
                    checked += 1
    assert checked >= 3  # demo, per-route, string-value at least


def test_filter_first_check_detects_a_filter_that_is_not_first():
    bad = {"@type": "x.HttpConnectionManager", "http_filters": [
        {"name": "envoy.filters.http.jwt_authn"},
        {"name": "envoy.filters.http.wasm", "typed_config": {"config": {"vm_config": {"code": {"local": {
            "filename": "build/cors_filter.wasm"}}}}}},
    ]}
    (hcm,) = connection_managers({"a": [bad]})
    assert any(is_ours(f) for f in hcm["http_filters"]) and not is_ours(hcm["http_filters"][0])
