"""The filter in a real Envoy: every behaviour of the foundation issue, over both encodings of
the plugin configuration (inline YAML → protobuf Struct, and JSON text in a StringValue)."""

import pytest

from envoy import (Envoy, bootstrap, free_port, header_values, listener, request, route,
                   upstream_cluster, upstream_listener, validate, wasm_filter)

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
    up, admin = free_port(), free_port()
    listeners = [upstream_listener(up)]
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
    envoy = Envoy(bootstrap(listeners, [upstream_cluster(up)], admin))
    yield ports
    envoy.stop()
    assert "panicked" not in envoy.log()




def cors(headers):
    """The CORS-relevant response headers, as a dict of name → list of values."""
    names = {"access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods",
             "access-control-allow-headers", "access-control-expose-headers", "access-control-max-age",
             "access-control-allow-private-network", "vary"}
    out = {}
    for k, v in headers:
        if k in names:
            out.setdefault(k, []).append(v)
    return out


def preflight(port, origin, method="PUT", req_headers=None, path="/api", host="test.local"):
    h = [("origin", origin), ("access-control-request-method", method)]
    if req_headers is not None:
        h.append(("access-control-request-headers", req_headers))
    return request(port, "OPTIONS", path, h, host=host)


def forwarded(headers):
    return header_values(headers, "x-upstream") == ["hit"]


@pytest.mark.parametrize("encoding", ENCODINGS)
class TestBehaviour:
    def test_a_non_cacheable_request_without_origin_passes_untouched(self, ports, encoding):
        status, headers, body = request(ports[encoding], "POST", "/cors-upstream/x",
                                        [("content-length", "0")])
        assert status == 200 and body == b"upstream body"
        # The upstream's own CORS headers and Vary stay exactly as it sent them.
        assert cors(headers) == {
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
        assert cors(headers) == {"vary": ["Accept-Encoding, Origin"]}

    def test_allowed_preflight_is_answered_by_the_filter(self, ports, encoding):
        status, headers, body = preflight(ports[encoding], APP, "PUT", "content-type, x-custom")
        assert status == 200 and body == b""
        assert not forwarded(headers)
        assert cors(headers) == {
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
        assert status == 200 and not forwarded(headers)
        assert cors(headers) == {
            "access-control-allow-origin": ["*"],
            "access-control-allow-methods": ["GET, DELETE"],
            "access-control-max-age": ["60"],
        }

    def test_preflight_never_lists_a_method_or_header_outside_the_policy(self, ports, encoding):
        _, headers, _ = preflight(ports[encoding], APP, "DELETE", "authorization")
        c = cors(headers)
        assert c["access-control-allow-origin"] == [APP]
        assert "DELETE" not in c["access-control-allow-methods"][0]
        assert "authorization" not in c["access-control-allow-headers"][0].lower()

    def test_preflight_from_refused_origin_is_forwarded_without_cors_headers(self, ports, encoding):
        status, headers, body = preflight(ports[encoding], "https://evil.example", path="/cors-upstream")
        assert status == 200 and forwarded(headers) and body == b"upstream body"
        # The upstream's CORS headers are removed: no origin the policy refused is ever allowed.
        assert cors(headers) == {"vary": ["Accept-Encoding, Origin"]}

    def test_options_without_request_method_is_an_actual_request(self, ports, encoding):
        status, headers, _ = request(ports[encoding], "OPTIONS", "/api", [("origin", APP)])
        assert status == 200 and forwarded(headers)
        assert cors(headers)["access-control-allow-origin"] == [APP]
        status, headers, _ = preflight(ports[encoding], APP, method="")
        assert forwarded(headers)

    def test_allowed_actual_request_gets_one_value_per_header_and_vary(self, ports, encoding):
        status, headers, body = request(ports[encoding], "GET", "/cors-upstream/x", [("origin", APP)])
        assert status == 200 and body == b"upstream body"
        assert cors(headers) == {
            "access-control-allow-origin": [APP],
            "access-control-allow-credentials": ["true"],
            "access-control-expose-headers": ["x-total"],
            "vary": ["Accept-Encoding, Origin"],
        }

    def test_refused_actual_request_is_forwarded_and_stripped_with_vary(self, ports, encoding):
        status, headers, body = request(ports[encoding], "POST", "/cors-upstream/x", [("origin", "https://evil.example")])
        assert status == 200 and forwarded(headers)
        assert cors(headers) == {"vary": ["Accept-Encoding, Origin"]}
        _, headers, _ = request(ports[encoding], "GET", "/plain", [("origin", "https://evil.example")])
        assert cors(headers) == {"vary": ["Origin"]}

    def test_origins_compare_as_browsers_serialize_them(self, ports, encoding):
        p = ports[encoding]
        allowed = ["https://app.example.com", "http://localhost:8080", "https://a.corp.example", "https://a.b.corp.example"]
        refused = ["https://app.example.com:443", "http://app.example.com", "http://localhost:8081",
                   "https://corp.example", "https://evilcorp.example", "https://a.corp.example.evil.net",
                   "https://APP.example.com", "null"]
        for origin in allowed:
            _, headers, _ = request(p, "GET", "/x", [("origin", origin)])
            assert cors(headers).get("access-control-allow-origin") == [origin], origin
        for origin in refused:
            _, headers, _ = request(p, "GET", "/x", [("origin", origin)])
            assert "access-control-allow-origin" not in cors(headers), origin

    def test_policy_selection_route_then_virtual_host_then_default(self, ports, encoding):
        p = ports[encoding]
        acao = lambda headers: cors(headers).get("access-control-allow-origin")
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
            assert status == 200 and forwarded(headers), (path, host)
            _, headers, _ = request(p, "GET", path, [("origin", "https://evil.example")], host=host)
            # Untouched: the upstream's own headers, no Vary added.
            assert cors(headers)["access-control-allow-origin"] == ["https://upstream-chose.example"]
            assert cors(headers)["vary"] == ["Accept-Encoding"]

    def test_non_utf8_origin_is_refused_and_the_vm_survives(self, ports, encoding):
        p = ports[encoding]
        status, headers, _ = request(p, "GET", "/x", [("origin", b"https://app.example.com\xff")])
        assert status == 200 and "access-control-allow-origin" not in cors(headers)
        status, headers, _ = preflight(p, APP)
        assert status == 200 and cors(headers)["access-control-allow-origin"] == [APP]


def refused_at_load(configuration, encoding="json"):
    up = free_port()
    config = bootstrap([listener("l", free_port(), [wasm_filter(configuration, encoding)], [
        {"name": "vh", "domains": ["*"], "routes": [route("r")]}])], [upstream_cluster(up)], free_port())
    code, output = validate(config)
    assert code != 0, "Envoy accepted a configuration the filter must refuse"
    return output


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_bad_origin_is_refused_at_load_naming_the_field(encoding):
    out = refused_at_load({"routes": {"api": {"allow_origins": ["https://a.example", "app.example.com/path"]}}}, encoding)
    assert 'invalid plugin configuration: routes.api.allow_origins[1]: "app.example.com/path" is not an origin' in out


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_any_origin_with_credentials_is_refused_at_load(encoding):
    out = refused_at_load({"policy": {"allow_origins": ["*"], "allow_credentials": True}}, encoding)
    assert "invalid plugin configuration: policy.allow_credentials: true together with an allow-any origin" in out


def test_unknown_field_and_wrong_type_are_refused_at_load():
    assert "routes.api.allow_origin: unknown field" in refused_at_load({"routes": {"api": {"allow_origin": ["*"]}}})
    assert "policy.max_age: expected a non-negative number of seconds" in refused_at_load({"policy": {"max_age": -5}})
    assert "configuration is not valid JSON" in refused_at_load('{"policy": ')
