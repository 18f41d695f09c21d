"""The filter in a real Envoy: every behaviour of the foundation issue, over both encodings of
the plugin configuration (inline YAML → protobuf Struct, and JSON text in a StringValue).
Configurations refused at load, in both encodings: tests/test_bad_config.py."""

import pytest

from tests.harness.envoy import (Envoy, cors_headers, free_port, listener, preflight, reached_upstream,
                         request, route, wasm_filter, with_upstream)

APP = "https://app.example.com"
POLICY = {
    "allow_origins": ["https://app.example.com:443", "http://localhost:8080", "https://*.corp.example"],
    "allow_methods": "GET, POST, PUT",
    "allow_headers": ["content-type", "X-Custom"],
    "expose_headers": "x-total",
    "max_age": "600",
    "allow_credentials": True,
}
CONFIG = {
    "policy": POLICY,
    "virtual_hosts": {
        "vh-other": {"allow_origins": ["https://vhost.example"], "allow_methods": "GET"},
        "vh-off": None,
    },
    "routes": {
        "open": {"allow_origins": ["*"], "allow_methods": "GET, DELETE", "max_age": 60},
        "off": None,
        "strict": {"allow_origins": ["https://strict.example"]},
    },
}
ENCODINGS = ["struct", "json"]


@pytest.fixture(scope="module")
def ports():
    listeners = []
    ports = {}
    for encoding in ENCODINGS:
        ports[encoding] = free_port()
        vhosts = [
            {"name": "vh-other", "domains": ["other.local"], "routes": [route("vh-other-route")]},
            {"name": "vh-off", "domains": ["off.local"], "routes": [route("vh-off-route")]},
            {"name": "vh-main", "domains": ["*"], "routes": [
                route("open", "/open"),
                # /off/… reaches the upstream's /cors-upstream/… (its own CORS headers).
                {"name": "off", "match": {"prefix": "/off/"},
                 "route": {"cluster": "upstream", "prefix_rewrite": "/cors-upstream/"}}, route("strict", "/strict"),
                route("default", "/"),
            ]},
        ]
        listeners.append(listener(f"cors-{encoding}", ports[encoding], [wasm_filter(CONFIG, encoding)], vhosts))
    envoy = Envoy(with_upstream(listeners))
    yield ports
    envoy.stop()
    assert "panicked" not in envoy.log()


@pytest.mark.parametrize("encoding", ENCODINGS)
class TestBehaviour:
    def test_a_non_cacheable_request_without_origin_passes_untouched(self, ports, encoding):
        status, headers, body = request(ports[encoding], "POST", "/cors-upstream/x",
                                        [("content-length", "0")])
        assert status == 200 and body == b"upstream body"
        # The upstream's own CORS headers and Vary stay exactly as it sent them.
        assert cors_headers(headers) == {
            "access-control-allow-origin": ["https://upstream-chose.example"],
            "access-control-allow-credentials": ["true"],
            "access-control-allow-methods": ["DELETE"],
            "vary": ["Accept-Encoding"],
        }

    @pytest.mark.parametrize("method", ["GET", "HEAD"])
    def test_a_cacheable_response_without_origin_varies_on_origin(self, ports, encoding, method):
        # Fetch, "CORS protocol and HTTP caches": the answer depends on Origin, so a shared
        # cache must not hand this response to a CORS request; the upstream's CORS headers,
        # which no CORS request asked for, go.
        status, headers, _ = request(ports[encoding], method, "/cors-upstream/x")
        assert status == 200
        assert cors_headers(headers) == {"vary": ["Accept-Encoding, Origin"]}

    def test_allowed_preflight_is_answered_by_the_filter(self, ports, encoding):
        status, headers, body = preflight(ports[encoding], APP, "PUT", "content-type, x-custom")
        assert status == 200 and body == b""
        assert not reached_upstream(headers)
        assert cors_headers(headers) == {
            "access-control-allow-origin": [APP],
            "access-control-allow-credentials": ["true"],
            "access-control-allow-methods": ["GET, POST, PUT"],
            "access-control-allow-headers": ["content-type, X-Custom"],
            "access-control-expose-headers": ["x-total"],
            "access-control-max-age": ["600"],
            "vary": ["Origin"],
        }

    def test_preflight_for_any_origin_answers_star_without_vary(self, ports, encoding):
        status, headers, _ = preflight(ports[encoding], "https://anyone.example", "DELETE", path="/open")
        assert status == 200 and not reached_upstream(headers)
        assert cors_headers(headers) == {
            "access-control-allow-origin": ["*"],
            "access-control-allow-methods": ["GET, DELETE"],
            "access-control-max-age": ["60"],
        }

    def test_preflight_never_lists_a_method_or_header_outside_the_policy(self, ports, encoding):
        _, headers, _ = preflight(ports[encoding], APP, "DELETE", "authorization")
        c = cors_headers(headers)
        assert c["access-control-allow-origin"] == [APP]
        assert "DELETE" not in c["access-control-allow-methods"][0]
        assert "authorization" not in c["access-control-allow-headers"][0].lower()

    def test_preflight_from_refused_origin_is_forwarded_without_cors_headers(self, ports, encoding):
        status, headers, body = preflight(ports[encoding], "https://evil.example", path="/cors-upstream")
        assert status == 200 and reached_upstream(headers) and body == b"upstream body"
        # The upstream's CORS headers are removed: no origin the policy refused is ever allowed.
        assert cors_headers(headers) == {"vary": ["Accept-Encoding, Origin"]}

    def test_options_without_request_method_is_an_actual_request(self, ports, encoding):
        status, headers, _ = request(ports[encoding], "OPTIONS", "/api", [("origin", APP)])
        assert status == 200 and reached_upstream(headers)
        assert cors_headers(headers)["access-control-allow-origin"] == [APP]
        status, headers, _ = preflight(ports[encoding], APP, method="")
        assert reached_upstream(headers)

    def test_allowed_actual_request_gets_one_value_per_header_and_vary(self, ports, encoding):
        status, headers, body = request(ports[encoding], "GET", "/cors-upstream/x", [("origin", APP)])
        assert status == 200 and body == b"upstream body"
        assert cors_headers(headers) == {
            "access-control-allow-origin": [APP],
            "access-control-allow-credentials": ["true"],
            "access-control-expose-headers": ["x-total"],
            "vary": ["Accept-Encoding, Origin"],
        }

    def test_refused_actual_request_is_forwarded_and_stripped_with_vary(self, ports, encoding):
        status, headers, body = request(ports[encoding], "POST", "/cors-upstream/x", [("origin", "https://evil.example")])
        assert status == 200 and reached_upstream(headers)
        assert cors_headers(headers) == {"vary": ["Accept-Encoding, Origin"]}
        _, headers, _ = request(ports[encoding], "GET", "/plain", [("origin", "https://evil.example")])
        assert cors_headers(headers) == {"vary": ["Origin"]}

    def test_origins_compare_as_browsers_serialize_them(self, ports, encoding):
        p = ports[encoding]
        allowed = ["https://app.example.com", "http://localhost:8080", "https://a.corp.example", "https://a.b.corp.example"]
        refused = ["https://app.example.com:443", "http://app.example.com", "http://localhost:8081",
                   "https://corp.example", "https://evilcorp.example", "https://a.corp.example.evil.net",
                   "https://APP.example.com", "null"]
        for origin in allowed:
            _, headers, _ = request(p, "GET", "/x", [("origin", origin)])
            assert cors_headers(headers).get("access-control-allow-origin") == [origin], origin
        for origin in refused:
            _, headers, _ = request(p, "GET", "/x", [("origin", origin)])
            assert "access-control-allow-origin" not in cors_headers(headers), origin

    def test_policy_selection_route_then_virtual_host_then_default(self, ports, encoding):
        p = ports[encoding]
        acao = lambda headers: cors_headers(headers).get("access-control-allow-origin")
        # routes[strict] wins over the default policy.
        assert acao(request(p, "GET", "/strict", [("origin", "https://strict.example")])[1]) == ["https://strict.example"]
        assert acao(request(p, "GET", "/strict", [("origin", APP)])[1]) is None
        # virtual_hosts[vh-other] applies to its routes (which have no entry in `routes`).
        assert acao(request(p, "GET", "/", [("origin", "https://vhost.example")], host="other.local")[1]) == ["https://vhost.example"]
        assert acao(request(p, "GET", "/", [("origin", APP)], host="other.local")[1]) is None
        # default policy elsewhere.
        assert acao(request(p, "GET", "/anything", [("origin", APP)])[1]) == [APP]

    def test_null_route_or_virtual_host_passes_untouched(self, ports, encoding):
        p = ports[encoding]
        for path, host in [("/off/x", "test.local"), ("/cors-upstream", "off.local")]:
            status, headers, _ = preflight(p, APP, path=path, host=host)
            assert status == 200 and reached_upstream(headers), (path, host)
            _, headers, _ = request(p, "GET", path, [("origin", "https://evil.example")], host=host)
            # Untouched: the upstream's own headers, no Vary added.
            assert cors_headers(headers)["access-control-allow-origin"] == ["https://upstream-chose.example"]
            assert cors_headers(headers)["vary"] == ["Accept-Encoding"]

    def test_non_utf8_origin_is_refused_and_the_vm_survives(self, ports, encoding):
        p = ports[encoding]
        status, headers, _ = request(p, "GET", "/x", [("origin", b"https://app.example.com\xff")])
        assert status == 200 and "access-control-allow-origin" not in cors_headers(headers)
        status, headers, _ = preflight(p, APP)
        assert status == 200 and cors_headers(headers)["access-control-allow-origin"] == [APP]

