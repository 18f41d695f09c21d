"""CorsPolicy parity fields end to end in a real Envoy: route metadata and the precedence of
policy sources, custom metadata namespace, shadow mode, filter_enabled 0%,
forward_not_matching_preflights, private network access, `*` mirroring, and the counters on
/stats and the debug log line for each refusal."""

import re

import pytest

from tests.harness.envoy import (Envoy, catch_all, cors_headers, free_port, header_values, listener, percent, preflight,
                         reached_upstream, request, route, wasm_filter, with_upstream)


def only(origin, **extra):
    return {"allow_origin_string_match": [{"exact": origin}], "allow_methods": "GET, PUT", **extra}

PRECEDENCE_CONFIG = {
    "route_metadata_namespace": "cors",
    "policy": only("https://default.test"),
    "virtual_hosts": {"vh-a": only("https://vhost.test")},
    "routes": {
        "r-meta": only("https://route-ignored.test"),
        "r-route": only("https://route.test"),
        "r-meta-other-ns": only("https://route.test"),
    },
}
PRECEDENCE_VHOSTS = [
    {"name": "vh-a", "domains": ["a.test"], "routes": [
        route("r-meta", "/meta", metadata={"filter_metadata": {"cors": only("https://meta.test")}}),
        route("r-meta-bad", "/bad-meta", metadata={"filter_metadata": {"cors": {"allow_origins": ["meta.test/x"]}}}),
        route("r-meta-other-ns", "/other-ns", metadata={"filter_metadata": {"elsewhere": only("https://meta.test")}}),
        route("r-route", "/route"),
        route("r-vh", "/"),
    ]},
    {"name": "vh-b", "domains": ["*"], "routes": [
        route("r-meta-b", "/meta", metadata={"filter_metadata": {"cors": only("https://meta.test")}}),
        route("r-default", "/"),
    ]},
]

MODES_CONFIG = {
    "routes": {
        "shadow": {**only("https://app.test"), "filter_enabled": percent(0, "cors.p0"),
                   "shadow_enabled": percent(100, "cors.p100")},
        "off": {**only("https://app.test"), "filter_enabled": percent(0, "cors.p0")},
        "strict": {**only("https://app.test"), "forward_not_matching_preflights": False,
                   "allow_private_network_access": True, "max_age": "60"},
        "mirror": {"allow_origin_string_match": [{"suffix": ".app.test"}], "allow_methods": "*",
                   "allow_headers": "*", "allow_credentials": True},
        "counted": only("https://app.test", allow_headers="x-a"),
    },
}
MODES_ROUTES = [route(name, f"/{name}") for name in MODES_CONFIG["routes"]]


@pytest.fixture(scope="module")
def proxy():
    ports = {"precedence": free_port(), "namespace": free_port(), "modes": free_port()}
    listeners = [
        listener("precedence", ports["precedence"], [wasm_filter(PRECEDENCE_CONFIG, "json")], PRECEDENCE_VHOSTS),
        listener("namespace", ports["namespace"],
                 [wasm_filter({"route_metadata_namespace": "acme.cors", "policy": only("https://default.test")})],
                 [{"name": "ns", "domains": ["*"], "routes": [
                     route("ns-meta", "/meta", metadata={"filter_metadata": {
                         "acme.cors": only("https://meta.test"), "cors": only("https://wrong-ns.test")}}),
                     route("ns-default", "/"),
                 ]}]),
        listener("modes", ports["modes"], [wasm_filter(MODES_CONFIG, "struct")], catch_all("modes", MODES_ROUTES)),
    ]
    envoy = Envoy(with_upstream(listeners))
    yield envoy, ports
    envoy.stop()
    assert "panicked" not in envoy.log()


def acao(resp):
    return header_values(resp[1], "access-control-allow-origin")


def get(port, path, origin, host="test.local"):
    return request(port, "GET", path, [("origin", origin)], host=host)


ALL_ORIGINS = ["https://meta.test", "https://route.test", "https://route-ignored.test", "https://vhost.test",
               "https://default.test", "https://wrong-ns.test"]


def allowed_origins(port, path, host="test.local"):
    return [o for o in ALL_ORIGINS if acao(get(port, path, o, host)) == [o]]


def test_precedence_is_route_metadata_then_routes_then_virtual_hosts_then_policy(proxy):
    _, ports = proxy
    p = ports["precedence"]
    assert allowed_origins(p, "/meta", host="a.test") == ["https://meta.test"]
    assert allowed_origins(p, "/route", host="a.test") == ["https://route.test"]
    assert allowed_origins(p, "/", host="a.test") == ["https://vhost.test"]
    assert allowed_origins(p, "/meta", host="b.test") == ["https://meta.test"]
    assert allowed_origins(p, "/", host="b.test") == ["https://default.test"]


def test_route_metadata_policy_answers_preflights(proxy):
    _, ports = proxy
    status, headers, _ = preflight(ports["precedence"], "https://meta.test", path="/meta")
    assert status == 200 and header_values(headers, "access-control-allow-methods") == ["GET, PUT"]
    assert header_values(headers, "x-upstream") == []


def test_metadata_in_another_namespace_is_ignored(proxy):
    _, ports = proxy
    assert allowed_origins(ports["precedence"], "/other-ns", host="a.test") == ["https://route.test"]


def test_invalid_route_metadata_policy_turns_cors_off_there_and_is_logged(proxy):
    envoy, ports = proxy
    for _ in range(5):
        resp = get(ports["precedence"], "/bad-meta", "https://vhost.test", host="a.test")
        assert resp[0] == 200 and reached_upstream(resp[1]) and cors_headers(resp[1]) == {}
    # A later request's debug line: once it is in the log, so is all the five requests logged
    # (one worker writes them in order).
    get(ports["precedence"], "/route", "https://marker.test", host="a.test")
    log = envoy.wait_log("refused: origin https://marker.test")
    assert "refused: origin https://marker.test" in log
    assert "route metadata filter_metadata.cors.allow_origins[0]" in log
    assert '(first seen on route "r-meta-bad")' in log
    # Decoded once per distinct route metadata, not per request: one error for five requests.
    assert log.count("invalid policy, CORS is off on this route") == 1


def test_route_metadata_namespace_is_configurable(proxy):
    _, ports = proxy
    assert allowed_origins(ports["namespace"], "/meta") == ["https://meta.test"]
    assert allowed_origins(ports["namespace"], "/") == ["https://default.test"]


def test_shadow_mode_changes_nothing(proxy):
    _, ports = proxy
    resp = preflight(ports["modes"], "https://app.test", path="/shadow")
    assert reached_upstream(resp[1]) and cors_headers(resp[1]) == {}
    resp = get(ports["modes"], "/shadow", "https://evil.test")
    assert reached_upstream(resp[1]) and cors_headers(resp[1]) == {}


def test_filter_enabled_zero_changes_nothing(proxy):
    _, ports = proxy
    for resp in (preflight(ports["modes"], "https://app.test", path="/off"), get(ports["modes"], "/off", "https://app.test")):
        assert reached_upstream(resp[1]) and cors_headers(resp[1]) == {}


def test_runtime_key_is_accepted_and_reported_as_ignored(proxy):
    envoy, _ = proxy
    warning = 'routes.off.filter_enabled.runtime_key "cors.p0" is ignored'
    assert warning in envoy.wait_log(warning)


def test_not_matching_preflight_gets_403_without_cors_headers_when_not_forwarded(proxy):
    _, ports = proxy
    resp = preflight(ports["modes"], "https://evil.test", path="/strict")
    assert resp[0] == 403 and not reached_upstream(resp[1])
    assert cors_headers(resp[1]) == {"vary": ["Origin"]}  # the answer depends on the origin


def test_private_network_preflight_is_allowed_only_when_enabled(proxy):
    _, ports = proxy
    resp = preflight(ports["modes"], "https://app.test", path="/strict", private_network=True)
    assert resp[0] == 200 and header_values(resp[1], "access-control-allow-private-network") == ["true"]
    assert header_values(resp[1], "access-control-max-age") == ["60"]
    resp = preflight(ports["modes"], "https://app.test", path="/counted", private_network=True)
    assert resp[0] == 200 and header_values(resp[1], "access-control-allow-private-network") == []


def test_star_methods_and_headers_mirror_the_request_and_vary_on_it(proxy):
    _, ports = proxy
    resp = preflight(ports["modes"], "https://x.app.test", path="/mirror", method="PATCH",
                     request_headers="X-Trace-Id, Authorization")
    h = resp[1]
    assert header_values(h, "access-control-allow-origin") == ["https://x.app.test"]
    assert header_values(h, "access-control-allow-credentials") == ["true"]
    assert header_values(h, "access-control-allow-methods") == ["PATCH"]
    assert header_values(h, "access-control-allow-headers") == ["x-trace-id, authorization"]
    assert header_values(h, "vary") == ["Origin, Access-Control-Request-Method, Access-Control-Request-Headers"]


def after_tick(envoy, port):
    """The filter's counters once everything sent so far is counted; the barrier request is a GET
    /shadow from the allowed origin, which no test here sends otherwise."""
    counters, _ = envoy.filter_counters_after_tick(lambda: get(port, "/shadow", "https://app.test"),
                                                   "wasmcustom.cors.shadow.actual.allowed")
    return counters


def test_counters_count_each_decision_on_stats(proxy):
    envoy, ports = proxy
    p = ports["modes"]
    before = after_tick(envoy, p)
    sent = {
        "cors.preflight.allowed": [lambda: preflight(p, "https://app.test", path="/counted")] * 3,
        "cors.preflight.denied_origin": [lambda: preflight(p, "https://evil.test", path="/counted")] * 2,
        "cors.preflight.denied_method": [lambda: preflight(p, "https://app.test", path="/counted", method="DELETE")],
        "cors.preflight.denied_headers": [
            lambda: preflight(p, "https://app.test", path="/counted", request_headers="x-b")] * 2,
        "cors.preflight.denied_private_network": [
            lambda: preflight(p, "https://app.test", path="/counted", private_network=True)],
        "cors.actual.allowed": [lambda: get(p, "/counted", "https://app.test")] * 4,
        "cors.actual.denied_origin": [lambda: get(p, "/counted", "https://evil.test")] * 5,
        "cors.shadow.preflight.allowed": [lambda: preflight(p, "https://app.test", path="/shadow")],
        "cors.shadow.actual.denied_origin": [lambda: get(p, "/shadow", "https://evil.test")] * 2,
    }
    for calls in sent.values():
        for call in calls:
            call()
    after = after_tick(envoy, p)
    moved = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
    assert moved == {f"wasmcustom.{name}": len(calls) for name, calls in sent.items()}


def test_each_refusal_is_logged_at_debug_with_the_reason(proxy):
    envoy, ports = proxy
    p = ports["modes"]
    preflight(p, "https://denied-origin.test", path="/counted")
    preflight(p, "https://app.test", path="/counted", method="DELETE")
    preflight(p, "https://app.test", path="/counted", request_headers="x-denied")
    get(p, "/shadow", "https://shadow-denied.test")
    wanted = [
        "refused: origin https://denied-origin.test is not in routes.counted.allow_origin_string_match",
        "refused: method DELETE is not in routes.counted.allow_methods",
        "refused: header x-denied is not in routes.counted.allow_headers",
        "refused: origin https://shadow-denied.test is not in routes.shadow.allow_origin_string_match "
        "(shadow mode: not enforced)",
    ]
    log = envoy.wait_log(*wanted)
    for w in wanted:
        assert w in log
    assert re.search(r"\[debug\].*refused: method DELETE", log)


def test_log_level_changed_at_run_time_is_followed_from_the_filters_next_tick():
    """The filter re-reads Envoy's Wasm log level on its 1 s timer, before it adds its counts to
    Envoy's: once a request counted after the change shows on /stats, the new level holds."""
    port = free_port()
    envoy = Envoy(with_upstream([listener("l", port, [wasm_filter({"policy": only("https://a.test")})],
                                          catch_all("v"))]))
    allowed = lambda: request(port, "GET", "/", [("origin", "https://a.test")])  # noqa: E731
    try:
        for level, origin in (("info", "https://quiet.test"), ("debug", "https://loud.test")):
            assert request(envoy.admin_port, "POST", f"/logging?wasm={level}")[0] == 200
            _, seconds = envoy.filter_counters_after_tick(allowed, "wasmcustom.cors.actual.allowed")
            assert seconds < 2, f"the 1 s timer ran only after {seconds:.1f}s"
            request(port, "GET", "/", [("origin", origin)])
        log = envoy.wait_log("refused: origin https://loud.test")
        assert "refused: origin https://loud.test is not in policy.allow_origin_string_match" in log
        assert "https://quiet.test" not in log
    finally:
        envoy.stop()
