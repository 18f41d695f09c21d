"""Where the two platforms most users run us on put a Wasm HTTP filter, written in Python from
their source (read with the search tools, not copied), so that the tests can check our
manifests against the platforms' real behaviour and build the same chains in a plain Envoy.

Envoy Gateway, envoyproxy/gateway at d32f28294245e454d20f81d323d626a90e660c1e (the commit of the
EnvoyProxy CRD in deploy/crds/), internal/xds/translator/httpfilters.go:
- `newOrderedHTTPFilter` gives each filter a number by its type (the type is a prefix of the
  filter's name, `isFilterType`); Lua, ext_proc, Wasm and dynamic modules add the index at the
  end of their name. `sortHTTPFilters` sorts by (number, name), then applies the EnvoyProxy's
  `spec.filterOrder` entries one after another on a linked list: each entry takes every filter
  of its `name` type and moves them, in their current order, right before the *first* filter of
  the `before` type, or right after the *last* filter of the `after` type. An entry whose filters
  or whose anchor are absent does nothing.
- api/v1alpha1/validation/envoyproxy_validate.go `validateFilterOrder` refuses an order whose
  edges (name -> before, after -> name) make a cycle.

Istio, istio/istio at 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c,
pilot/pkg/networking/core/listener_builder.go `buildHTTPConnectionManager` (gateways and
sidecars; listener_waypoint.go `buildWaypointHTTPFilters` does the same for waypoints): metadata
exchange (sidecars), then the CUSTOM authorization filters (an RBAC filter in shadow mode that
marks matching requests, then ext_authz enabled by that mark: pilot/pkg/security/authz/builder/
builder.go `buildHTTP`), then WasmPlugins of phase AUTHN, then jwt_authn (plus `istio_authn`
before Istio 1.24, commit be801cebf40 removed it), then phase AUTHZ, then RBAC (AUDIT, DENY,
ALLOW), then STATS and unspecified phases, then grpc_stats, fault, Envoy's CORS filter (Istio's
VirtualService `corsPolicy`), telemetry, router (`extension.PopAppendHTTPTrafficExtension`
appends each phase's plugins at its place; since 1.30 a WasmPlugin becomes a TrafficExtension of the
same phase, pilot/pkg/config/kube/extensions/translate.go `translateWasmPlugin`; 1.29 placed
WasmPlugins at the same places).
"""

import yaml

from tests.harness.envoy import ROOT

WASM = "envoy.filters.http.wasm"
CORS = "envoy.filters.http.cors"
EXT_AUTHZ = "envoy.filters.http.ext_authz"
API_KEY_AUTH = "envoy.filters.http.api_key_auth"
BASIC_AUTH = "envoy.filters.http.basic_auth"
OAUTH2 = "envoy.filters.http.oauth2"
JWT_AUTHN = "envoy.filters.http.jwt_authn"
RBAC = "envoy.filters.http.rbac"
ROUTER = "envoy.filters.http.router"

# Envoy Gateway's fixed numbers per filter type (`newOrderedHTTPFilter`); a type not listed gets 50.
EG_FIXED_ORDER = {
    "envoy.filters.http.custom_response": 0,
    "envoy.filters.http.health_check": 1,
    "envoy.filters.http.fault": 2,
    CORS: 3,
    "envoy.filters.http.csrf": 4,
    "envoy.filters.http.header_mutation": 5,
    EXT_AUTHZ: 6,
    API_KEY_AUTH: 7,
    BASIC_AUTH: 8,
    OAUTH2: 9,
    JWT_AUTHN: 10,
    "envoy.filters.http.stateful_session": 11,
    "envoy.filters.http.buffer": 12,
    "envoy.filters.http.geoip": 300,
    RBAC: 301,
    "envoy.filters.http.local_ratelimit": 302,
    "envoy.filters.http.ratelimit": 303,
    "envoy.filters.http.bandwidth_limit": 304,
    "envoy.filters.http.grpc_web": 305,
    "envoy.filters.http.grpc_stats": 306,
    "envoy.filters.http.credential_injector": 307,
    "envoy.filters.http.compressor": 308,
    "envoy.filters.http.dynamic_forward_proxy": 309,
    ROUTER: 310,
}
# Types of which a listener may hold several filters, numbered base + the index ending the name.
EG_INDEXED_ORDER = {
    "envoy.filters.http.lua": 13,
    "envoy.filters.http.ext_proc": 100,
    WASM: 200,
    "envoy.filters.http.dynamic_modules": 250,
}

# The authentication filters a SecurityPolicy adds (ext_authz, API key, basic auth, OIDC, JWT),
# in Envoy Gateway's order, and its CORS filter (SecurityPolicy `cors`) before them.
EG_AUTH_FILTERS = [EXT_AUTHZ, API_KEY_AUTH, BASIC_AUTH, OAUTH2, JWT_AUTHN]

# Names as Envoy Gateway generates them for policies in namespace `default`: per-route filters
# are `<type>/<policy kind>/<namespace>/<name>[/<kind>/<index>]` (translator/utils.go
# `perRouteFilterName`, gatewayapi `irConfigNameForWasm`); the others carry the bare type.
EG_FILTER_NAMES = {
    CORS: CORS,
    EXT_AUTHZ: f"{EXT_AUTHZ}/securitypolicy/default/auth",
    API_KEY_AUTH: API_KEY_AUTH,
    BASIC_AUTH: f"{BASIC_AUTH}/securitypolicy/default/auth",
    OAUTH2: f"{OAUTH2}/securitypolicy/default/auth",
    JWT_AUTHN: JWT_AUTHN,
    RBAC: f"{RBAC}/securitypolicy/default/auth",
    "envoy.filters.http.local_ratelimit": "envoy.filters.http.local_ratelimit",
    "envoy.filters.http.fault": "envoy.filters.http.fault",
    "envoy.filters.http.ext_proc": "envoy.filters.http.ext_proc/envoyextensionpolicy/default/proc/extproc/0",
    ROUTER: ROUTER,
}
OUR_EG_FILTER = f"{WASM}/envoyextensionpolicy/default/cors/wasm/0"
# The native build's filter (an EnvoyExtensionPolicy `dynamicModule`): only its type prefix and
# its trailing index matter to the sorting.
DYNAMIC_MODULES = "envoy.filters.http.dynamic_modules"
OUR_NATIVE_EG_FILTER = f"{DYNAMIC_MODULES}/envoyextensionpolicy/default/cors/dynamicmodule/0"

# What one writes first: one move per filter, in the order the filters come in the chain. It fails
# as soon as two of them are present (tests/test_filter_order.py).
EG_NATURAL_ORDER = [{"name": WASM, "before": f} for f in [CORS, *EG_AUTH_FILTERS]]
EG_ENVOYPROXY = ROOT / "deploy" / "envoy-gateway" / "envoyproxy-filter-order.yaml"
EG_NATIVE_ENVOYPROXY = ROOT / "deploy" / "envoy-gateway" / "envoyproxy-native.yaml"


def eg_envoyproxy(path=EG_ENVOYPROXY):
    """The EnvoyProxy we ship (for the Wasm build; `EG_NATIVE_ENVOYPROXY` for the native one)."""
    (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return doc


def eg_shipped_order():
    return eg_envoyproxy()["spec"]["filterOrder"]


def is_filter_type(name, filter_type):
    """Envoy Gateway's `isFilterType`: the type is a prefix of the filter's name."""
    return name.startswith(filter_type)


def eg_default_order(name):
    """Envoy Gateway's `newOrderedHTTPFilter` number for a filter name."""
    for filter_type, base in EG_INDEXED_ORDER.items():
        if is_filter_type(name, filter_type):
            return base + int(name.rsplit("/", 1)[1])
    for filter_type, order in EG_FIXED_ORDER.items():
        if is_filter_type(name, filter_type):
            return order
    return 50


def eg_sort(names, filter_order=()):
    """Envoy Gateway's `sortHTTPFilters`: the default sort, then each `filterOrder` entry
    ({name, before | after}) applied in turn to the result of the previous one."""
    chain = sorted(names, key=lambda n: (eg_default_order(n), n))
    for entry in filter_order:
        moving = [n for n in chain if is_filter_type(n, entry["name"])]
        if not moving:
            continue
        if "before" in entry:
            anchors = [n for n in chain if is_filter_type(n, entry["before"])]
            if not anchors:
                continue
            anchor = anchors[0]
            for n in moving:
                if n != anchor:
                    chain.remove(n)
                    chain.insert(chain.index(anchor), n)
        elif "after" in entry:
            anchors = [n for n in chain if is_filter_type(n, entry["after"])]
            if not anchors:
                continue
            anchor = anchors[-1]
            for n in reversed(moving):
                if n != anchor:
                    chain.remove(n)
                    chain.insert(chain.index(anchor) + 1, n)
    return chain


def eg_filter_order_cycle(filter_order):
    """Envoy Gateway's `validateFilterOrder`: the first edge that closes a cycle, or None."""
    edges = {}

    def reaches(start, goal):
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(edges.get(node, ()))
        return False

    for entry in filter_order:
        src, dst = ((entry["name"], entry["before"]) if "before" in entry else (entry["after"], entry["name"]))
        if reaches(dst, src):
            return src, dst
        edges.setdefault(src, set()).add(dst)
    return None


def istio_http_filters(custom_authz=(), authn_plugins=(), authn=(), authz_plugins=(), authz=(),
                       stats_plugins=(), tail=()):
    """The HTTP filters of an Istio gateway listener in the order `buildHTTPConnectionManager`
    appends them (metadata exchange, which sidecars add first, left out): each argument is the
    list of filters Istio would build for that slot; `tail` is what follows (fault, cors, …)."""
    return [*custom_authz, *authn_plugins, *authn, *authz_plugins, *authz, *stats_plugins, *tail]
