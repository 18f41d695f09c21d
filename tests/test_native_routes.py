"""The native build's per-route policies (`typed_per_filter_config` with a
`DynamicModuleFilterPerRoute`) and its preflights on routes split by method, in Envoy 1.40.

A per-route entry on a route, a virtual host or the route configuration: the most specific
applies (Envoy resolves it), before the filter-level `routes`, `virtual_hosts` and `policy`;
`null` turns CORS off, an empty entry inherits. A preflight is judged by the route a request
with its `Access-Control-Request-Method` takes: the module sets `:method`, has Envoy match the
route again, reads that route's entry and name, and restores `OPTIONS`."""

import pytest

from tests.harness.envoy import (Envoy, catch_all, free_port, header_values, listener, native_filter,
                                 native_route_config, preflight, reached_upstream, request, route, validate,
                                 with_upstream)

A, B, C = "https://a.example", "https://b.example", "https://c.example"
FILTER_LEVEL = {"policy": {"allow_origins": [A], "allow_methods": "GET"}}


def with_per_route(r, configuration, encoding="struct"):
    r["typed_per_filter_config"] = {"cors": native_route_config(configuration, encoding)}
    return r


def method_route(name, method, config=..., match="exact", prefix="/items"):
    """A route for one method on `prefix`, as Gateway API method matches reach Envoy (`exact`)
    or as hand-written tables often have them (`safe_regex`)."""
    string_match = {"exact": method} if match == "exact" else {"safe_regex": {"regex": method}}
    r = {"name": name, "route": {"cluster": "upstream"},
         "match": {"prefix": prefix, "headers": [{"name": ":method", "string_match": string_match}]}}
    return r if config is ... else with_per_route(r, config)


@pytest.fixture(scope="module")
def ports():
    p = {name: free_port() for name in ["levels", "rest", "gateway", "names"]}
    levels = [{
        "name": "levels", "domains": ["*"],
        "typed_per_filter_config": {"cors": native_route_config({"allow_origins": [B]})},
        "routes": [
            with_per_route(route("own", "/own"), {"allow_origins": [C], "allow_methods": "PATCH"}),
            with_per_route(route("own-json", "/json"), {"allow_origins": [C]}, encoding="json"),
            with_per_route(route("off", "/off"), None),
            with_per_route(route("inherit", "/inherit"), {}),
            with_per_route(route("enabled-only", "/enabled-only"), ...),
            route("vhost", "/"),
        ],
    }]
    rest = [
        method_route("items-get", "GET", {"allow_origins": [A], "allow_methods": "GET"}),
        method_route("items-put", "PUT", {"allow_origins": [B], "allow_methods": "PUT",
                                          "allow_headers": "content-type"}),
        method_route("items-delete", "DELETE", None),
        # Preflights that go on reach the upstream through this route only.
        method_route("items-options", "OPTIONS"),
    ]
    # Gateway API method matches (exact) under a filter-level policy; only PUT has its own.
    gateway = [
        method_route("put", "PUT", {"allow_origins": [B], "allow_methods": "PUT"}),
        method_route("get", "GET"),
    ]
    # No per-route entries at all: the filter-level `routes` map keyed by route name, with
    # regex method matches (docs/method-split-routes.md's table).
    names = [method_route("items-put", "PUT", match="regex"), method_route("items-get", "GET", match="regex")]
    names_config = {"routes": {"items-put": {"allow_origins": [B], "allow_methods": "PUT"},
                               "items-get": {"allow_origins": [A], "allow_methods": "GET"}}}
    proxy = Envoy(with_upstream([
        listener("levels", p["levels"], [native_filter(FILTER_LEVEL)], levels),
        listener("rest", p["rest"], [native_filter(FILTER_LEVEL)], catch_all("rest", rest)),
        listener("gateway", p["gateway"], [native_filter(FILTER_LEVEL)], catch_all("gateway", gateway)),
        listener("names", p["names"], [native_filter(names_config)], catch_all("names", names)),
    ]), component_log_level="dynamic_modules:debug")
    yield p
    proxy.stop()


def acao(headers):
    return header_values(headers, "access-control-allow-origin")


@pytest.mark.parametrize("path, allowed, refused", [
    ("/own", C, B),            # the route's own entry, over its virtual host's
    ("/json", C, B),           # the same as JSON text (StringValue)
    ("/", B, A),               # the virtual host's entry, over the filter-level policy
    ("/inherit", A, B),        # `{}`: the filter-level policy decides
    ("/enabled-only", A, B),   # no filter_config (Envoy Gateway's form): likewise
])
def test_the_most_specific_per_route_policy_decides(ports, path, allowed, refused):
    status, headers, _ = preflight(ports["levels"], allowed, "GET", path=path)
    assert (status, acao(headers)) == (200, [allowed])
    status, headers, _ = request(ports["levels"], "GET", path, [("origin", refused)])
    assert acao(headers) == []
    assert "origin" in [v.strip().lower() for k, v in headers if k == "vary" for v in v.split(",")]


def test_a_route_policy_in_envoys_vocabulary_is_answered_as_written(ports):
    status, headers, _ = preflight(ports["levels"], C, "PATCH", path="/own")
    assert status == 200
    assert header_values(headers, "access-control-allow-methods") == ["PATCH"]


def test_a_null_per_route_config_turns_cors_off_there(ports):
    status, headers, _ = preflight(ports["levels"], B, "GET", path="/off")
    assert reached_upstream(headers)  # forwarded untouched, not answered
    assert acao(headers) == []
    status, headers, _ = request(ports["levels"], "GET", "/off", [("origin", B)])
    assert acao(headers) == [] and header_values(headers, "vary") == []


def test_a_preflight_gets_the_policy_of_the_route_its_actual_request_takes(ports):
    status, headers, _ = preflight(ports["rest"], B, "PUT", request_headers="content-type", path="/items")
    assert status == 200 and not reached_upstream(headers)
    assert acao(headers) == [B]
    assert header_values(headers, "access-control-allow-methods") == ["PUT"]
    assert header_values(headers, "access-control-allow-headers") == ["content-type"]
    status, headers, _ = preflight(ports["rest"], A, "GET", path="/items")
    assert (status, acao(headers)) == (200, [A])


@pytest.mark.parametrize("origin, method", [
    (A, "PUT"),        # refused by the PUT route's policy
    (B, "DELETE"),     # the DELETE route turns CORS off
])
def test_a_preflight_the_policy_does_not_answer_goes_on_as_options(ports, origin, method):
    status, headers, _ = preflight(ports["rest"], origin, method, path="/items")
    # Only the OPTIONS route reaches the upstream: `:method` is OPTIONS again, and Envoy
    # matched the route again after the module restored it.
    assert status == 200 and reached_upstream(headers)
    assert acao(headers) == []


@pytest.mark.parametrize("method, origin", [("PUT", B), ("GET", A)])
def test_actual_requests_keep_their_own_routes_policy(ports, method, origin):
    status, headers, _ = request(ports["rest"], method, "/items", [("origin", origin), ("content-length", "0")])
    assert status == 200 and reached_upstream(headers)
    assert acao(headers) == [origin]


def test_gateway_api_method_matches_get_the_method_routes_policy(ports):
    status, headers, _ = preflight(ports["gateway"], B, "PUT", path="/items")
    assert (status, acao(headers)) == (200, [B])
    # GET has no entry of its own: the filter-level policy.
    status, headers, _ = preflight(ports["gateway"], A, "GET", path="/items")
    assert (status, acao(headers)) == (200, [A])


def test_a_preflight_with_no_route_for_its_method_falls_back_to_the_filter_level_policy(ports):
    status, headers, _ = preflight(ports["gateway"], A, "GET", path="/nothing-here")
    assert (status, acao(headers)) == (200, [A])


def test_route_names_follow_the_actual_requests_route_too(ports):
    # The Wasm build answers this preflight 404 (tests/test_method_split_routes.py): no route
    # matches OPTIONS. The native build judges it by the PUT route's name.
    status, headers, _ = preflight(ports["names"], B, "PUT", path="/items")
    assert (status, acao(headers)) == (200, [B])
    assert header_values(headers, "access-control-allow-methods") == ["PUT"]


@pytest.mark.parametrize("entry, message", [
    ({"allow_origins": ["https://a.example/"]}, "invalid per-route configuration: typed_per_filter_config.allow_origins[0]"),
    ({"allow_origins": [A], "max_age": "10m"}, "invalid per-route configuration: typed_per_filter_config.max_age"),
])
def test_a_bad_per_route_policy_refuses_the_route_configuration_naming_the_field(entry, message):
    vhosts = catch_all("check", [with_per_route(route("bad"), entry)])
    code, out = validate(with_upstream([listener("check", free_port(), [native_filter(FILTER_LEVEL)], vhosts)]))
    assert code != 0
    assert message in out


def test_a_per_route_entry_for_another_filter_name_is_refused():
    r = route("other")
    r["typed_per_filter_config"] = {"cors": native_route_config({}, filter_name="other")}
    code, out = validate(with_upstream([listener("check", free_port(), [native_filter(FILTER_LEVEL)],
                                                 catch_all("check", [r]))]))
    assert code != 0
    assert 'unknown filter_name "other"' in out
