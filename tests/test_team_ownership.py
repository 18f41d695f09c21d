"""Each team keeps its own CORS (docs/deploy.md, "Each team keeps its own CORS"): the manifests of
that section, read from the page, turned into the listeners Envoy Gateway and Istio generate from
them, in a real Envoy 1.40.

Envoy Gateway (internal/xds/translator/wasm.go): one Wasm filter per EnvoyExtensionPolicy, named
`envoy.filters.http.wasm/envoyextensionpolicy/<ns>/<name>/wasm/<i>`, with that name as `vm_id`,
its config as JSON text, disabled on the listener and enabled (`FilterConfig{config: {}}`) on the
routes of the policy's targets; a policy on a named rule wins over one on its HTTPRoute. Routes are
named `httproute/<ns>/<name>/rule/<i>/match/<j>/<host>`, virtual hosts
`<gateway ns>/<gateway>/<listener>/<host>`.

Istio: one filter per WasmPlugin, in document order (same phase, no priority: by age), config as
JSON text, no `vm_id`; virtual hosts `<host>:80`, routes named after `http[].name` (none when the
entry has no name).

Each test also runs on a second listener built from the same manifests with a rule (Istio: an
unnamed `http[]` entry) inserted at the top of team orders' routes, which renumbers Envoy Gateway's
route names: the answers must not change.
"""

import copy
import re

import pytest
import yaml

from tests.harness.envoy import (ROOT, Envoy, bootstrap, free_port, header_values, listener, reached_upstream, request,
                                 upstream_cluster, upstream_listener, wasm_filter)
from tests.test_manifests import crd_errors, crds

SHOP, BILLING_UI, ELSEWHERE = "https://shop.example.com", "https://billing.example.com", "https://elsewhere.example"
ORDERS, BILLING = "orders.example.com", "billing.example.com"


def section_documents():
    """The manifests in the ```yaml blocks of docs/deploy.md's team section."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("\n## Each team keeps its own CORS\n", 1)[1].split("\n## ", 1)[0]
    return [d for block in re.findall(r"```yaml\n(.*?)```", section, re.S) for d in yaml.safe_load_all(block)]


DOCS = section_documents()


def of_kind(kind):
    return [d for d in DOCS if d["kind"] == kind]


def with_rule_inserted(docs, kind, name, rule):
    """`docs` with `rule` inserted first into the `kind` object `name` (an HTTPRoute's `rules`,
    a VirtualService's `http`)."""
    out = copy.deepcopy(docs)
    (target,) = [d for d in out if d["kind"] == kind and d["metadata"]["name"] == name]
    target["spec"]["rules" if kind == "HTTPRoute" else "http"].insert(0, rule)
    return out


def enable():
    return {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "config": {}}


def upstream_route(name, match):
    r = {"match": match, "route": {"cluster": "upstream"}}
    if name is not None:
        r["name"] = name
    return r


def gateway_api_match(m):
    path = m["path"]
    return {"path": path["value"]} if path["type"] == "Exact" else {"prefix": path["value"]}


def envoy_gateway_listener(name, port, docs):
    """The listener Envoy Gateway generates for the HTTPRoutes and EnvoyExtensionPolicies in `docs`."""
    filters, virtual_hosts = {}, []
    policies = [d for d in docs if d["kind"] == "EnvoyExtensionPolicy"]
    for hr in (d for d in docs if d["kind"] == "HTTPRoute"):
        ns, hr_name = hr["metadata"]["namespace"], hr["metadata"]["name"]

        def policy_for(rule):
            """The most specific policy: one on the rule's name, else one on the HTTPRoute."""
            for section in (rule.get("name"), None):
                for p in policies:
                    for t in p["spec"]["targetRefs"]:
                        if (p["metadata"]["namespace"] == ns and t["kind"] == "HTTPRoute" and t["name"] == hr_name
                                and t.get("sectionName") == section and (section or "sectionName" not in t)):
                            return p
            return None

        for host in hr["spec"]["hostnames"]:
            h = host.replace(".", "_")
            routes = []
            for i, rule in enumerate(hr["spec"]["rules"]):
                for j, m in enumerate(rule.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]):
                    r = upstream_route(f"httproute/{ns}/{hr_name}/rule/{i}/match/{j}/{h}", gateway_api_match(m))
                    policy = policy_for(rule)
                    if policy:
                        ir_name = f"envoyextensionpolicy/{ns}/{policy['metadata']['name']}/wasm/0"
                        filter_name = f"envoy.filters.http.wasm/{ir_name}"
                        if filter_name not in filters:
                            f = wasm_filter(policy["spec"]["wasm"][0]["config"], encoding="json", vm_id=ir_name)
                            f.update(name=filter_name, disabled=True)
                            filters[filter_name] = f
                        r["typed_per_filter_config"] = {filter_name: enable()}
                    routes.append(r)
            virtual_hosts.append({"name": f"default/eg/http/{h}", "domains": [host, f"{host}:*"], "routes": routes})
    return listener(name, port, list(filters.values()), virtual_hosts)


def istio_match(http):
    uri = (http.get("match") or [{}])[0].get("uri", {"prefix": "/"})
    return {"path": uri["exact"]} if "exact" in uri else {"prefix": uri["prefix"]}


def istio_listener(name, port, docs):
    """The gateway listener Istio generates for the VirtualServices and WasmPlugins in `docs`
    (port 80)."""
    filters = []
    for wp in (d for d in docs if d["kind"] == "WasmPlugin"):
        f = wasm_filter(wp["spec"]["pluginConfig"], encoding="json", vm_id="")
        f["typed_config"]["config"]["root_id"] = wp["spec"].get("pluginName", "")
        f["name"] = f"extensions.istio.io/wasmplugin/{wp['metadata']['namespace']}.{wp['metadata']['name']}"
        filters.append(f)
    virtual_hosts = [{"name": f"{host}:80", "domains": [host, f"{host}:*"],
                      "routes": [upstream_route(http.get("name"), istio_match(http)) for http in vs["spec"]["http"]]}
                     for vs in (d for d in docs if d["kind"] == "VirtualService") for host in vs["spec"]["hosts"]]
    return listener(name, port, filters, virtual_hosts)


INSERTED_EG_RULE = {"matches": [{"path": {"type": "PathPrefix", "value": "/new"}}],
                    "backendRefs": [{"name": "orders", "port": 8080}]}
INSERTED_ISTIO_HTTP = {"match": [{"uri": {"prefix": "/new"}}],
                       "route": [{"destination": {"host": "orders.orders.svc.cluster.local"}}]}
LISTENERS = {
    "eg": lambda port: envoy_gateway_listener("eg", port, DOCS),
    "eg-inserted": lambda port: envoy_gateway_listener(
        "eg-inserted", port, with_rule_inserted(DOCS, "HTTPRoute", "orders", INSERTED_EG_RULE)),
    "istio": lambda port: istio_listener("istio", port, DOCS),
    "istio-inserted": lambda port: istio_listener(
        "istio-inserted", port, with_rule_inserted(DOCS, "VirtualService", "orders", INSERTED_ISTIO_HTTP)),
}
PLATFORMS = ["eg", "eg-inserted", "istio", "istio-inserted"]


@pytest.fixture(scope="module")
def envoy():
    up, admin = free_port(), free_port()
    ports = {name: free_port() for name in LISTENERS}
    listeners = [upstream_listener(up)] + [build(ports[name]) for name, build in LISTENERS.items()]
    e = Envoy(bootstrap(listeners, [upstream_cluster(up)], admin))
    e.ports = ports
    yield e
    e.stop()
    assert "panicked" not in e.log()


def preflight(envoy, platform, host, path, origin, method="POST"):
    return request(envoy.ports[platform], "OPTIONS", path,
                   [("origin", origin), ("access-control-request-method", method)], host=host)


def actual(envoy, platform, host, path, origin):
    return request(envoy.ports[platform], "GET", path, [("origin", origin)], host=host)


def acao(response):
    return header_values(response[1], "access-control-allow-origin")


def answers(envoy, platform, host, path):
    """What each origin gets on `path`: (preflight status, its ACAO, its allowed methods, the
    actual request's ACAO and credentials)."""
    out = {}
    for origin in (SHOP, BILLING_UI, ELSEWHERE):
        p, a = preflight(envoy, platform, host, path, origin), actual(envoy, platform, host, path, origin)
        assert reached_upstream(a[1]), (platform, host, path, origin)
        out[origin] = (p[0], acao(p), header_values(p[1], "access-control-allow-methods"), acao(a),
                       header_values(a[1], "access-control-allow-credentials"))
    return out


def test_the_section_holds_both_platforms_manifests_and_they_pass_the_crds():
    assert [d["kind"] for d in DOCS] == ["HTTPRoute", "EnvoyExtensionPolicy", "HTTPRoute", "EnvoyExtensionPolicy",
                                         "EnvoyExtensionPolicy", "VirtualService", "WasmPlugin", "VirtualService",
                                         "WasmPlugin"]
    for d in DOCS:
        if (d["apiVersion"], d["kind"]) in crds():
            assert crd_errors(d) == [], d["metadata"]["name"]


def test_team_configs_name_only_their_own_routes():
    """Envoy Gateway policies carry a plain `policy` (their routes follow their targets); Istio
    plugins carry no default `policy`, and key only their own VirtualService's hosts and names."""
    for p in of_kind("EnvoyExtensionPolicy"):
        assert set(p["spec"]["wasm"][0]["config"]) == {"stat_prefix", "policy"}, p["metadata"]
    vss = {vs["metadata"]["name"]: vs for vs in of_kind("VirtualService")}
    for wp in of_kind("WasmPlugin"):
        config, team = wp["spec"]["pluginConfig"], vss[wp["metadata"]["name"].removeprefix("cors-")]
        assert "policy" not in config
        assert set(config["virtual_hosts"]) == {f"{h}:80" for h in team["spec"]["hosts"]}
        assert set(config.get("routes", {})) <= {http.get("name") for http in team["spec"]["http"]}


def test_the_listeners_have_one_filter_per_policy_and_eg_enables_each_only_on_its_targets():
    eg = envoy_gateway_listener("eg", 1, DOCS)["filter_chains"][0]["filters"][0]["typed_config"]
    names = [f["name"] for f in eg["http_filters"][:-1]]
    assert names == ["envoy.filters.http.wasm/envoyextensionpolicy/orders/cors/wasm/0",
                     "envoy.filters.http.wasm/envoyextensionpolicy/billing/cors-public/wasm/0",
                     "envoy.filters.http.wasm/envoyextensionpolicy/billing/cors/wasm/0"]
    enabled = {r["name"]: list(r["typed_per_filter_config"]) for vh in eg["route_config"]["virtual_hosts"]
               for r in vh["routes"]}
    assert enabled == {"httproute/orders/orders/rule/0/match/0/orders_example_com": [names[0]],
                       "httproute/billing/billing/rule/0/match/0/billing_example_com": [names[1]],
                       "httproute/billing/billing/rule/1/match/0/billing_example_com": [names[2]]}
    istio = istio_listener("istio", 1, DOCS)["filter_chains"][0]["filters"][0]["typed_config"]
    assert [f["name"] for f in istio["http_filters"][:-1]] == [
        "extensions.istio.io/wasmplugin/istio-system.cors-orders",
        "extensions.istio.io/wasmplugin/istio-system.cors-billing"]
    assert [r.get("name") for r in istio["route_config"]["virtual_hosts"][0]["routes"]] == ["orders-health", None]


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("path", ["/", "/orders/42"])
def test_orders_routes_get_the_orders_policy_only(envoy, platform, path):
    got = answers(envoy, platform, ORDERS, path)
    assert got[SHOP] == (200, [SHOP], ["GET, POST, PUT"], [SHOP], ["true"])
    assert got[BILLING_UI][1] == [] and got[BILLING_UI][3] == [], "billing's origin leaked into orders' routes"
    assert got[ELSEWHERE][1] == [] and got[ELSEWHERE][3] == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_billing_routes_get_the_billing_policy_only(envoy, platform):
    got = answers(envoy, platform, BILLING, "/invoices/7")
    assert got[BILLING_UI] == (200, [BILLING_UI], ["GET, POST"], [BILLING_UI], ["true"])
    assert got[SHOP][1] == [] and got[SHOP][3] == [], "orders' origin leaked into billing's routes"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_billing_public_rule_gets_its_own_policy_and_nothing_of_the_route_wide_one(envoy, platform):
    got = answers(envoy, platform, BILLING, "/public/rates")
    for origin in (SHOP, BILLING_UI, ELSEWHERE):
        assert got[origin] == (200, ["*"], ["GET"], ["*"], []), origin


@pytest.mark.parametrize("platform", ["istio", "istio-inserted"])
def test_istio_orders_health_route_has_cors_off(envoy, platform):
    got = answers(envoy, platform, ORDERS, "/healthz")
    for origin in (SHOP, BILLING_UI):
        assert got[origin][1] == [] and got[origin][3] == [], origin


@pytest.mark.parametrize("family", ["eg", "istio"])
@pytest.mark.parametrize("host,path", [(ORDERS, "/"), (ORDERS, "/new/x"), (ORDERS, "/healthz"), (BILLING, "/"),
                                       (BILLING, "/public/x")])
def test_inserting_a_rule_first_changes_no_answer(envoy, family, host, path):
    """The inserted rule renumbers Envoy Gateway's route names of team orders (rule/0 becomes
    rule/1); on Istio it is an unnamed route. Its path falls under the team's catch-all before."""
    assert answers(envoy, f"{family}-inserted", host, path) == answers(envoy, family, host, path)
