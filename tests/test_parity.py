"""CorsPolicy parity fields end to end in a real Envoy: route metadata and the precedence of
policy sources, custom metadata namespace, shadow mode, filter_enabled 0%,
forward_not_matching_preflights, private network access, `*` mirroring, and the counters on
/stats and the debug log line for each denial."""

import re
import time

import pytest

from envoy import (Envoy, bootstrap, free_port, header_values, listener, request, route, upstream_cluster,
                   upstream_listener, wasm_filter)


def only(origin, **extra):
    return {"allow_origin_string_match": [{"exact": origin}], "allow_methods": "GET, PUT", **extra}


PERCENT = lambda n: {"default_value": {"numerator": n, "denominator": "HUNDRED"}, "runtime_key": f"cors.p{n}"}

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
        "shadow": {**only("https://app.test"), "filter_enabled": PERCENT(0), "shadow_enabled": PERCENT(100)},
        "off": {**only("https://app.test"), "filter_enabled": PERCENT(0)},
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
    up, admin = free_port(), free_port()
    ports = {"precedence": free_port(), "namespace": free_port(), "modes": free_port()}
    listeners = [
        upstream_listener(up),
        listener("precedence", ports["precedence"], [wasm_filter(PRECEDENCE_CONFIG, "json")], PRECEDENCE_VHOSTS),
        listener("namespace", ports["namespace"],
                 [wasm_filter({"route_metadata_namespace": "acme.cors", "policy": only("https://default.test")})],
                 [{"name": "ns", "domains": ["*"], "routes": [
                     route("ns-meta", "/meta", metadata={"filter_metadata": {
                         "acme.cors": only("https://meta.test"), "cors": only("https://wrong-ns.test")}}),
                     route("ns-default", "/"),
                 ]}]),
        listener("modes", ports["modes"], [wasm_filter(MODES_CONFIG, "struct")],
                 [{"name": "modes", "domains": ["*"], "routes": MODES_ROUTES}]),
    ]
    envoy = Envoy(bootstrap(listeners, [upstream_cluster(up)], admin))
    yield envoy, ports
    envoy.stop()
    assert "panicked" not in envoy.log()


def acao(resp):
    return header_values(resp[1], "access-control-allow-origin")


def cors_headers(resp):
    return [(k, v) for k, v in resp[1] if k.startswith("access-control-")]


def forwarded(resp):
    return header_values(resp[1], "x-upstream") == ["hit"]


def get(port, path, origin, host="test.local"):
    return request(port, "GET", path, [("origin", origin)], host=host)


def preflight(port, path, origin, method="PUT", headers=None, private_network=False):
    h = [("origin", origin), ("access-control-request-method", method)]
    if headers:
        h.append(("access-control-request-headers", headers))
    if private_network:
        h.append(("access-control-request-private-network", "true"))
    return request(port, "OPTIONS", path, h)


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
    status, headers, _ = preflight(ports["precedence"], "/meta", "https://meta.test")
    assert status == 200 and header_values(headers, "access-control-allow-methods") == ["GET, PUT"]
    assert header_values(headers, "x-upstream") == []


def test_metadata_in_another_namespace_is_ignored(proxy):
    _, ports = proxy
    assert allowed_origins(ports["precedence"], "/other-ns", host="a.test") == ["https://route.test"]


def test_invalid_route_metadata_policy_turns_cors_off_there_and_is_logged(proxy):
    envoy, ports = proxy
    for _ in range(5):
        resp = get(ports["precedence"], "/bad-meta", "https://vhost.test", host="a.test")
        assert resp[0] == 200 and forwarded(resp) and cors_headers(resp) == []
    log = envoy.wait_log("filter_metadata.cors.allow")
    assert "route metadata filter_metadata.cors.allow_origins[0]" in log
    assert '(first seen on route "r-meta-bad")' in log
    # Decoded once per distinct route metadata, not per request: one error for five requests.
    time.sleep(0.3)
    assert envoy.log().count("invalid policy, CORS is off on this route") == 1


def test_route_metadata_namespace_is_configurable(proxy):
    _, ports = proxy
    assert allowed_origins(ports["namespace"], "/meta") == ["https://meta.test"]
    assert allowed_origins(ports["namespace"], "/") == ["https://default.test"]


def test_shadow_mode_changes_nothing(proxy):
    _, ports = proxy
    resp = preflight(ports["modes"], "/shadow", "https://app.test")
    assert forwarded(resp) and cors_headers(resp) == [] and header_values(resp[1], "vary") == []
    resp = get(ports["modes"], "/shadow", "https://evil.test")
    assert forwarded(resp) and cors_headers(resp) == [] and header_values(resp[1], "vary") == []


def test_filter_enabled_zero_changes_nothing(proxy):
    _, ports = proxy
    for resp in (preflight(ports["modes"], "/off", "https://app.test"), get(ports["modes"], "/off", "https://app.test")):
        assert forwarded(resp) and cors_headers(resp) == [] and header_values(resp[1], "vary") == []


def test_runtime_key_is_accepted_and_reported_as_ignored(proxy):
    envoy, _ = proxy
    warning = 'routes.off.filter_enabled.runtime_key "cors.p0" is ignored'
    assert warning in envoy.wait_log(warning)


def test_not_matching_preflight_gets_403_without_cors_headers_when_not_forwarded(proxy):
    _, ports = proxy
    resp = preflight(ports["modes"], "/strict", "https://evil.test")
    assert resp[0] == 403 and not forwarded(resp) and cors_headers(resp) == []


def test_private_network_preflight_is_allowed_only_when_enabled(proxy):
    _, ports = proxy
    resp = preflight(ports["modes"], "/strict", "https://app.test", private_network=True)
    assert resp[0] == 200 and header_values(resp[1], "access-control-allow-private-network") == ["true"]
    assert header_values(resp[1], "access-control-max-age") == ["60"]
    resp = preflight(ports["modes"], "/counted", "https://app.test", private_network=True)
    assert resp[0] == 200 and header_values(resp[1], "access-control-allow-private-network") == []


def test_star_methods_and_headers_mirror_the_request_and_vary_on_it(proxy):
    _, ports = proxy
    resp = preflight(ports["modes"], "/mirror", "https://x.app.test", method="PATCH",
                     headers="X-Trace-Id, Authorization")
    h = resp[1]
    assert header_values(h, "access-control-allow-origin") == ["https://x.app.test"]
    assert header_values(h, "access-control-allow-credentials") == ["true"]
    assert header_values(h, "access-control-allow-methods") == ["PATCH"]
    assert header_values(h, "access-control-allow-headers") == ["x-trace-id, authorization"]
    assert header_values(h, "vary") == ["Origin, Access-Control-Request-Method, Access-Control-Request-Headers"]


def counters(envoy):
    return {k: int(v) for k, v in envoy.stats("wasmcustom").items() if v.strip().isdigit()}


def wait_for(envoy, expected, timeout=5.0):
    """Polls /stats until every expected counter reached its value (flushed on a 1 s tick)."""
    deadline = time.time() + timeout
    while True:
        now = counters(envoy)
        if all(now.get(k, 0) >= v for k, v in expected.items()) or time.time() > deadline:
            return now
        time.sleep(0.2)


def test_counters_count_each_decision_on_stats(proxy):
    envoy, ports = proxy
    p = ports["modes"]
    time.sleep(1.2)  # earlier tests' counts are flushed
    before = counters(envoy)
    sent = {
        "cors.preflight.allowed": [lambda: preflight(p, "/counted", "https://app.test")] * 3,
        "cors.preflight.denied_origin": [lambda: preflight(p, "/counted", "https://evil.test")] * 2,
        "cors.preflight.denied_method": [lambda: preflight(p, "/counted", "https://app.test", method="DELETE")],
        "cors.preflight.denied_headers": [lambda: preflight(p, "/counted", "https://app.test", headers="x-b")] * 2,
        "cors.preflight.denied_private_network": [
            lambda: preflight(p, "/counted", "https://app.test", private_network=True)],
        "cors.actual.allowed": [lambda: get(p, "/counted", "https://app.test")] * 4,
        "cors.actual.denied_origin": [lambda: get(p, "/counted", "https://evil.test")] * 5,
        "cors.shadow.preflight.allowed": [lambda: preflight(p, "/shadow", "https://app.test")],
        "cors.shadow.actual.denied_origin": [lambda: get(p, "/shadow", "https://evil.test")] * 2,
    }
    for calls in sent.values():
        for call in calls:
            call()
    expected = {f"wasmcustom.{name}": before.get(f"wasmcustom.{name}", 0) + len(calls) for name, calls in sent.items()}
    wait_for(envoy, expected)
    time.sleep(1.2)  # one more tick: nothing else may arrive
    after = counters(envoy)
    assert {k: after.get(k, 0) for k in expected} == expected
    untouched = [k for k in after if k not in expected and after[k] != before.get(k, 0)]
    assert untouched == [], untouched


def test_each_denial_is_logged_at_debug_with_the_reason(proxy):
    envoy, ports = proxy
    p = ports["modes"]
    preflight(p, "/counted", "https://denied-origin.test")
    preflight(p, "/counted", "https://app.test", method="DELETE")
    preflight(p, "/counted", "https://app.test", headers="x-denied")
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


def test_log_level_changed_at_run_time_is_followed_within_a_second():
    up, port, admin = free_port(), free_port(), free_port()
    envoy = Envoy(bootstrap(
        [upstream_listener(up), listener("l", port, [wasm_filter({"policy": only("https://a.test")})],
                                         [{"name": "v", "domains": ["*"], "routes": [route("r")]}])],
        [upstream_cluster(up)], admin))
    try:
        assert request(admin, "POST", "/logging?wasm=info")[0] == 200
        time.sleep(1.5)
        request(port, "GET", "/", [("origin", "https://quiet.test")])
        assert request(admin, "POST", "/logging?wasm=debug")[0] == 200
        time.sleep(1.5)  # the filter re-reads the level on its 1 s tick
        request(port, "GET", "/", [("origin", "https://loud.test")])
        log = envoy.wait_log("refused: origin https://loud.test")
        assert "refused: origin https://loud.test is not in policy.allow_origin_string_match" in log
        assert "https://quiet.test" not in log
    finally:
        envoy.stop()
