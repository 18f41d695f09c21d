"""The filter chains Envoy Gateway and Istio build, reproduced in a real Envoy 1.40 (the orders
come from filter_order.py, which models their source), with a browser's requests through them.

Envoy Gateway: the Wasm filter and the SecurityPolicy filters are added disabled to the listener
and enabled per route (`typed_per_filter_config` with an empty `FilterConfig`, as its translator
does); jwt_authn holds a `requirement_map` and each route names its requirement. Three listeners
carry the same filters in three orders: Envoy Gateway's default, our EnvoyProxy's
(deploy/envoy-gateway/envoyproxy-filter-order.yaml), and the same moves in the natural order.

Istio: the filters a gateway gets with a CUSTOM AuthorizationPolicy (an RBAC filter in shadow
mode marking the requests the policy covers, then ext_authz enabled by that mark), a
RequestAuthentication (jwt_authn; a missing token passes, an invalid one gets 401) and an ALLOW
AuthorizationPolicy requiring a request principal (RBAC, 403), with our filter placed as
WasmPlugin phase AUTHN, AUTHZ or STATS would place it. The ext_authz service is a listener of
the same Envoy that refuses everything.
"""

import base64
import hashlib

import pytest

from tests.harness.chains import JWT_ISSUER, jwks, jwt
from tests.harness.envoy import (Envoy, cors_headers, bootstrap, free_port, header_values, listener, request, route, upstream_cluster,
                   upstream_listener, wasm_filter)
from tests.harness.filter_order import (BASIC_AUTH, CORS, EG_NATURAL_ORDER, JWT_AUTHN, OUR_EG_FILTER, ROUTER, eg_shipped_order,
                          eg_sort, istio_http_filters)

ALLOWED = "https://app.example"
REFUSED = "https://evil.example"
POLICY = {"policy": {"allow_origins": [ALLOWED], "allow_methods": "GET, PUT",
                     "allow_headers": "authorization, content-type", "allow_credentials": True}}
BASIC_USER, BASIC_PASSWORD = "user", "a test password"



def typed(type_name, **fields):
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


ENABLE = typed("envoy.config.route.v3.FilterConfig", config={})


# ---------------------------------------------------------------- Envoy Gateway

EG_BASIC = f"{BASIC_AUTH}/securitypolicy/default/basic"
EG_JWT_REQUIREMENT = "httproute/default/backend/rule/0/match/0/www_example_com"


def eg_filters():
    """The filters Envoy Gateway puts on a listener for our EnvoyExtensionPolicy and two
    SecurityPolicies (JWT, basic auth), by name."""
    ours = wasm_filter(POLICY, encoding="json")  # Envoy Gateway passes the config as JSON text
    ours.update(name=OUR_EG_FILTER, disabled=True)
    sha1 = base64.b64encode(hashlib.sha1(BASIC_PASSWORD.encode()).digest()).decode()
    return {
        OUR_EG_FILTER: ours,
        JWT_AUTHN: {"name": JWT_AUTHN, "typed_config": typed(
            "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            providers={"default/jwt/example": {"issuer": JWT_ISSUER, "local_jwks": {"inline_string": jwks()}}},
            requirement_map={EG_JWT_REQUIREMENT: {"provider_name": "default/jwt/example"}})},
        EG_BASIC: {"name": EG_BASIC, "disabled": True, "typed_config": typed(
            "envoy.extensions.filters.http.basic_auth.v3.BasicAuth",
            users={"inline_string": f"{BASIC_USER}:{{SHA}}{sha1}\n"})},
        ROUTER: None,  # listener() appends the router
    }


def eg_routes():
    jwt_route = {OUR_EG_FILTER: ENABLE, JWT_AUTHN: typed(
        "envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig", requirement_name=EG_JWT_REQUIREMENT)}
    return [{"name": "default/eg/http/www_example_com", "domains": ["*"], "routes": [
        route("jwt", "/jwt", typed_per_filter_config=jwt_route),
        route("basic", "/basic", typed_per_filter_config={OUR_EG_FILTER: ENABLE, EG_BASIC: ENABLE}),
    ]}]


def eg_chain(filter_order):
    filters = eg_filters()
    return [filters[name] for name in eg_sort(list(filters), filter_order) if name != ROUTER]


EG_ORDERS = {"default": [], "natural": EG_NATURAL_ORDER, "shipped": eg_shipped_order()}


# ---------------------------------------------------------------- Istio

ISTIO_EXT_AUTHZ_KEY = "istio_ext_authz_shadow_effective_policy_id"


def custom_authz(authz_cluster, skip_preflights):
    """A CUSTOM AuthorizationPolicy for paths under /custom, with provider `authz`: Istio's
    shadow RBAC filter names the matching policy in dynamic metadata and ext_authz runs only
    for requests so marked (authz builder `buildHTTP`, `generateFilterMatcherForProvider`).
    `skip_preflights`: the policy's rule says `notMethods: ["OPTIONS"]`."""
    permission = {"url_path": {"path": {"prefix": "/custom"}}}
    if skip_preflights:
        permission = {"and_rules": {"rules": [
            permission, {"not_rule": {"header": {"name": ":method", "string_match": {"exact": "OPTIONS"}}}}]}}
    return [
        {"name": "envoy.filters.http.rbac", "typed_config": typed(
            "envoy.extensions.filters.http.rbac.v3.RBAC",
            shadow_rules={"action": "DENY", "policies": {"istio-ext-authz-authz-ns[default]-policy[custom]-rule[0]": {
                "permissions": [permission], "principals": [{"any": True}]}}},
            shadow_rules_stat_prefix="istio_ext_authz_")},
        {"name": "envoy.filters.http.ext_authz", "typed_config": typed(
            "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            transport_api_version="V3",
            http_service={"server_uri": {"uri": "http://authz", "cluster": authz_cluster, "timeout": "2s"}},
            filter_enabled_metadata={"filter": "envoy.filters.http.rbac", "path": [{"key": ISTIO_EXT_AUTHZ_KEY}],
                                     "value": {"string_match": {"prefix": "istio-ext-authz-authz"}}})},
    ]


def request_authentication():
    """jwt_authn as Istio builds it for a RequestAuthentication: a token is checked when present,
    a missing one passes (the AuthorizationPolicy decides), the claims go to dynamic metadata."""
    return {"name": JWT_AUTHN, "typed_config": typed(
        "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        providers={"origins-0": {"issuer": JWT_ISSUER, "local_jwks": {"inline_string": jwks()},
                                 "payload_in_metadata": "payload", "forward": True}},
        rules=[{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
            {"provider_name": "origins-0"}, {"allow_missing": {}}]}}}])}


def require_principal_under_jwt():
    """An ALLOW AuthorizationPolicy: /jwt needs a request principal (a valid token), the rest is open."""
    jwt_path = {"url_path": {"path": {"prefix": "/jwt"}}}
    principal = {"metadata": {"filter": JWT_AUTHN, "path": [{"key": "payload"}, {"key": "iss"}],
                              "value": {"string_match": {"exact": JWT_ISSUER}}}}
    return {"name": "envoy.filters.http.rbac", "typed_config": typed(
        "envoy.extensions.filters.http.rbac.v3.RBAC",
        rules={"action": "ALLOW", "policies": {
            "ns[default]-policy[require-jwt]-rule[0]": {"permissions": [jwt_path], "principals": [principal]},
            "ns[default]-policy[open]-rule[0]": {"permissions": [{"not_rule": jwt_path}],
                                                 "principals": [{"any": True}]},
        }})}


def istio_chain(phase, authz_cluster, skip_preflights=False):
    ours = [wasm_filter(POLICY, encoding="json")]
    slot = {p: ours if p == phase else [] for p in ("AUTHN", "AUTHZ", "STATS")}
    return istio_http_filters(
        custom_authz=custom_authz(authz_cluster, skip_preflights),
        authn_plugins=slot["AUTHN"], authn=[request_authentication()],
        authz_plugins=slot["AUTHZ"], authz=[require_principal_under_jwt()],
        stats_plugins=slot["STATS"],
        tail=[{"name": CORS, "typed_config": typed("envoy.extensions.filters.http.cors.v3.Cors")}])


ISTIO_LISTENERS = {"AUTHN": ("AUTHN", False), "AUTHZ": ("AUTHZ", False), "STATS": ("STATS", False),
                   "AUTHN-custom-skips-preflights": ("AUTHN", True)}


# ---------------------------------------------------------------- one Envoy for all

def authz_listener(port):
    """The ext_authz service: refuses every request with 403."""
    return listener("authz", port, [], [{"name": "authz", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "direct_response": {"status": 403, "body": {"inline_string": "denied by authz"}}}]}])


@pytest.fixture(scope="module")
def envoy():
    up, authz, admin = free_port(), free_port(), free_port()
    ports = {f"eg-{name}": free_port() for name in EG_ORDERS} | {f"istio-{n}": free_port() for n in ISTIO_LISTENERS}
    catch_all = [{"name": "istio", "domains": ["*"], "routes": [route("istio")]}]
    listeners = [upstream_listener(up), authz_listener(authz)]
    listeners += [listener(f"eg-{name}", ports[f"eg-{name}"], eg_chain(order), eg_routes())
                  for name, order in EG_ORDERS.items()]
    listeners += [listener(f"istio-{name}", ports[f"istio-{name}"], istio_chain(phase, "authz", skip), catch_all)
                  for name, (phase, skip) in ISTIO_LISTENERS.items()]
    e = Envoy(bootstrap(listeners, [upstream_cluster(up), upstream_cluster(authz, name="authz")], admin))
    e.ports = ports
    yield e
    e.stop()
    assert "panicked" not in e.log()


def preflight(port, path, origin=ALLOWED):
    return request(port, "OPTIONS", path, [("origin", origin), ("access-control-request-method", "PUT"),
                                          ("access-control-request-headers", "authorization")])


def actual(port, path, *extra, origin=ALLOWED):
    return request(port, "GET", path, [("origin", origin), *extra])


def answered_by_us(response):
    status, headers, _ = response
    cors = cors_headers(headers)
    return (status == 200 and cors.get("access-control-allow-origin") == [ALLOWED]
            and cors.get("access-control-allow-methods") == ["GET, PUT"]
            and header_values(headers, "x-upstream") == [])


def acao(response):
    return header_values(response[1], "access-control-allow-origin")


def basic_credentials(password=BASIC_PASSWORD):
    return ("authorization", "Basic " + base64.b64encode(f"{BASIC_USER}:{password}".encode()).decode())


# ---------------------------------------------------------------- Envoy Gateway

def test_envoy_gateway_chains_are_in_the_modelled_orders():
    """What the listeners below carry (after the filters a route does not enable are skipped)."""
    chains = {name: [f["name"] for f in eg_chain(order)] for name, order in EG_ORDERS.items()}
    assert chains == {"default": [EG_BASIC, JWT_AUTHN, OUR_EG_FILTER],
                      "natural": [EG_BASIC, OUR_EG_FILTER, JWT_AUTHN],
                      "shipped": [OUR_EG_FILTER, EG_BASIC, JWT_AUTHN]}


@pytest.mark.parametrize("path, status", [("/jwt", 401), ("/basic", 401)])
def test_envoy_gateway_default_order_refuses_the_preflight_without_cors(envoy, path, status):
    """The defect: the SecurityPolicy's filter answers the preflight (no credentials) with its
    401 before our filter sees it, and no CORS header comes back: the browser blocks the call."""
    port = envoy.ports["eg-default"]
    pf = preflight(port, path)
    assert pf[0] == status
    assert cors_headers(pf[1]) == {}
    response = actual(port, path)
    assert response[0] == status and acao(response) == []


@pytest.mark.parametrize("path", ["/jwt", "/basic"])
def test_envoy_gateway_with_our_envoyproxy_answers_the_preflight_and_the_401_carries_acao(envoy, path):
    port = envoy.ports["eg-shipped"]
    assert answered_by_us(preflight(port, path))
    response = actual(port, path)
    assert response[0] == 401 and acao(response) == [ALLOWED]
    assert header_values(response[1], "access-control-allow-credentials") == ["true"]
    refused = actual(port, path, origin=REFUSED)
    assert refused[0] == 401 and acao(refused) == []


def test_envoy_gateway_with_our_envoyproxy_lets_valid_credentials_through(envoy):
    port = envoy.ports["eg-shipped"]
    for path, credentials in [("/jwt", ("authorization", f"Bearer {jwt()}")), ("/basic", basic_credentials())]:
        status, headers, _ = actual(port, path, credentials)
        assert status == 200 and header_values(headers, "x-upstream") == ["hit"], path
        assert header_values(headers, "access-control-allow-origin") == [ALLOWED], path
    assert actual(port, "/basic", basic_credentials("wrong"))[0] == 401


def test_envoy_gateway_natural_order_still_fails_with_two_auth_filters(envoy):
    """The same moves listed in the chain's order: the last one (before jwt_authn) puts Wasm
    back behind basic_auth, so basic auth's routes refuse preflights again."""
    port = envoy.ports["eg-natural"]
    assert answered_by_us(preflight(port, "/jwt"))
    pf = preflight(port, "/basic")
    assert pf[0] == 401 and cors_headers(pf[1]) == {}


# ---------------------------------------------------------------- Istio

def test_istio_authn_phase_answers_the_preflight_before_jwt_authn_and_rbac(envoy):
    port = envoy.ports["istio-AUTHN"]
    assert answered_by_us(preflight(port, "/jwt"))
    no_token = actual(port, "/jwt")  # jwt_authn lets it pass, RBAC wants a principal
    assert no_token[0] == 403 and acao(no_token) == [ALLOWED]
    expired = actual(port, "/jwt", ("authorization", f"Bearer {jwt(lifetime=-600)}"))
    assert expired[0] == 401 and acao(expired) == [ALLOWED]
    valid = actual(port, "/jwt", ("authorization", f"Bearer {jwt()}"))
    assert valid[0] == 200 and acao(valid) == [ALLOWED]


@pytest.mark.parametrize("phase, preflight_answered, acao_on_401, acao_on_403", [
    ("AUTHN", True, True, True),
    ("AUTHZ", True, False, True),     # after jwt_authn: its 401 never passes through us
    ("STATS", False, False, False),   # after RBAC: the preflight gets RBAC's 403
])
def test_istio_phase_decides_which_refusals_browsers_can_read(envoy, phase, preflight_answered, acao_on_401,
                                                              acao_on_403):
    port = envoy.ports[f"istio-{phase}"]
    pf = preflight(port, "/jwt")
    assert answered_by_us(pf) == preflight_answered
    if not preflight_answered:
        assert pf[0] == 403 and cors_headers(pf[1]) == {}
    expired = actual(port, "/jwt", ("authorization", f"Bearer {jwt(lifetime=-600)}"))
    assert expired[0] == 401 and bool(acao(expired)) == acao_on_401
    no_token = actual(port, "/jwt")
    assert no_token[0] == 403 and bool(acao(no_token)) == acao_on_403


def test_istio_custom_authorization_runs_before_the_authn_phase(envoy):
    """CUSTOM (ext_authz) comes before every WasmPlugin phase: when its policy covers
    preflights, the preflight gets ext_authz's 403 without CORS headers, and its refusals of
    actual requests never carry Access-Control-Allow-Origin."""
    port = envoy.ports["istio-AUTHN"]
    pf = preflight(port, "/custom")
    assert pf[0] == 403 and pf[2] == b"denied by authz" and cors_headers(pf[1]) == {}
    response = actual(port, "/custom")
    assert response[0] == 403 and acao(response) == []


def test_istio_custom_policy_that_skips_options_lets_us_answer_the_preflight(envoy):
    """The workaround: `notMethods: ["OPTIONS"]` in the CUSTOM policy's rule. The actual
    request is still refused before us (no ACAO: the browser sees a network error)."""
    port = envoy.ports["istio-AUTHN-custom-skips-preflights"]
    assert answered_by_us(preflight(port, "/custom"))
    response = actual(port, "/custom")
    assert response[0] == 403 and acao(response) == []
    # Elsewhere the chain is the AUTHN one.
    assert actual(port, "/jwt")[0] == 403 and acao(actual(port, "/jwt")) == [ALLOWED]
