"""Every manifest under deploy/ is checked the way a cluster would check it, and its CORS
configuration the way the filter would: against the CRD schemas (copies in deploy/crds/, kept
identical to ../shared/crds/), with unknown fields refused as `kubectl apply --validate=strict`
does, the CEL rules that apply evaluated by hand, the embedded plugin configuration against
schema/plugin-config.schema.json and the filter's own parser (through `cors-explain --check`, see
tests/harness/plugin_config.py), and the route / virtual host names it uses against the names Istio and
Envoy Gateway generate from the example routes."""

import copy
import functools
import hashlib
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from scripts.oci import NATIVE as NATIVE_IMAGE
from tests.harness.envoy import ROOT
from tests.harness.plugin_config import schema_errors

DEPLOY = ROOT / "deploy"
CRD_DIR = DEPLOY / "crds"
SHARED_CRDS = ROOT.parent / "shared" / "crds"
CRD_FILES = ["istio-wasmplugin.yaml", "envoy-gateway-envoyextensionpolicy.yaml", "envoy-gateway-envoyproxy.yaml"]

# Kinds in the examples whose CRDs are not part of this repository (Istio networking and the
# Gateway API): checked for apiVersion/kind/metadata, and used for the route-name checks below.
KINDS_WITHOUT_CRD = {
    ("networking.istio.io/v1", "Gateway"),
    ("networking.istio.io/v1", "VirtualService"),
    ("gateway.networking.k8s.io/v1", "Gateway"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
}

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
METADATA_SCHEMA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": DNS_SUBDOMAIN},
        "namespace": {"type": "string", "maxLength": 63, "pattern": DNS_LABEL},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}


# ---------------------------------------------------------------- OpenAPI v3 -> JSON Schema

def to_json_schema(node):
    """Translates a CRD's OpenAPI v3 schema into JSON Schema: `nullable` becomes a "null" type,
    the `x-kubernetes-*` extensions are dropped (CEL rules are evaluated separately, see
    `cel_errors`), and objects with declared properties refuse unknown fields unless
    `x-kubernetes-preserve-unknown-fields` says otherwise (the API server prunes or, with strict
    field validation, refuses them)."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = to_json_schema(value)
        else:
            out[key] = value
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if ("properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def load_crd(path):
    # libyaml's loader: the EnvoyProxy CRD is 1.4 MB.
    crd = yaml.load(Path(path).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert crd["kind"] == "CustomResourceDefinition", path
    return crd


@functools.cache
def crds():
    """{(apiVersion, kind): (openAPIV3Schema, translated JSON Schema)} for served versions."""
    out = {}
    for name in CRD_FILES:
        crd = load_crd(CRD_DIR / name)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if not version.get("served"):
                continue
            openapi = version["schema"]["openAPIV3Schema"]
            js = to_json_schema(openapi)
            js.setdefault("properties", {})
            js["properties"]["apiVersion"] = {"const": f"{group}/{version['name']}"}
            js["properties"]["kind"] = {"const": kind}
            js["properties"]["metadata"] = METADATA_SCHEMA
            js["required"] = sorted(set(js.get("required", [])) | {"apiVersion", "kind", "metadata"})
            js["additionalProperties"] = False
            out[(f"{group}/{version['name']}", kind)] = (openapi, js)
    return out


# ---------------------------------------------------------------- CEL rules (x-kubernetes-validations)

def _url_scheme_ok(url):
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    return scheme in ("", "http", "https", "oci", "file")


_ROUTE_KINDS = ["HTTPRoute", "GRPCRoute", "UDPRoute", "TCPRoute", "TLSRoute"]
_TARGET_KINDS = ["Gateway", "ListenerSet"] + _ROUTE_KINDS

# The rules of both CRDs that can apply to our manifests, by message, written in Python.
# A rule met on a node of a manifest and missing here fails the test (nothing goes unchecked).
CEL = {
    # Istio WasmPlugin
    "only one of targetRefs or selector can be set":
        lambda s: sum(k in s for k in ("selector", "targetRef", "targetRefs")) <= 1,
    "wildcard not allowed in label key match": lambda s: all("*" not in k for k in s),
    "key must not be empty": lambda s: all(len(k) > 0 for k in s),
    "wildcard not allowed in label value match": lambda s: "*" not in s,
    "cross namespace referencing is not currently supported": lambda s: len(s) == 0,
    "url must have schema one of [http, https, file, oci]": _url_scheme_ok,
    "value may only be set when valueFrom is INLINE":
        lambda s: s.get("valueFrom", "") != "HOST" or "value" not in s,
    # Envoy Gateway EnvoyExtensionPolicy
    "either targetRef or targetRefs must be used":
        lambda s: (("targetRef" in s) != ("targetRefs" in s)) or len(s.get("targetSelectors", [])) > 0,
    "this policy can only have a targetRef.group of gateway.networking.k8s.io":
        lambda s: "targetRef" not in s or s["targetRef"].get("group") == "gateway.networking.k8s.io",
    "this policy can only have a targetRef.kind of Gateway/ListenerSet/HTTPRoute/GRPCRoute/TCPRoute/UDPRoute/TLSRoute":
        lambda s: "targetRef" not in s or s["targetRef"].get("kind") in _TARGET_KINDS,
    "this policy can only have a targetRefs[*].group of gateway.networking.k8s.io":
        lambda s: all(r.get("group") == "gateway.networking.k8s.io" for r in s.get("targetRefs", [])),
    "this policy can only have a targetRefs[*].kind of Gateway/ListenerSet/HTTPRoute/GRPCRoute/TCPRoute/UDPRoute/TLSRoute":
        lambda s: all(r.get("kind") in _TARGET_KINDS for r in s.get("targetRefs", [])),
    "mergeType can only be used with xRoute targets":
        lambda s: "mergeType" not in s or (
            ("targetRef" not in s or s["targetRef"].get("kind") in _ROUTE_KINDS)
            and all(r.get("kind") in _ROUTE_KINDS for r in s.get("targetRefs", []))
            and all(r.get("kind") in _ROUTE_KINDS for r in s.get("targetSelectors", []))),
    "Replace is not a valid MergeType for EnvoyExtensionPolicy": lambda s: s != "Replace",
    "If type is HTTP, http field needs to be set.":
        lambda s: ("http" in s) if s.get("type") == "HTTP" else ("http" not in s),
    "If type is Image, image field needs to be set.":
        lambda s: ("image" in s) if s.get("type") == "Image" else ("image" not in s),
    "only support Secret kind.": lambda s: s.get("kind", "Secret") == "Secret",
    # Envoy Gateway EnvoyProxy
    "only one of luaValidation or lua may be set": lambda s: not ("luaValidation" in s and "lua" in s),
    "mergeGateways and mergeBackends cannot both be enabled":
        lambda s: not (s.get("mergeGateways") and "mergeBackends" in s),
    "only one of envoyDeployment or envoyDaemonSet can be specified":
        lambda s: not ("envoyDeployment" in s and "envoyDaemonSet" in s),
    "cannot use envoyHpa if envoyDaemonSet is used": lambda s: not ("envoyHpa" in s and "envoyDaemonSet" in s),
    "Either image or imageRepository can be set.": lambda s: not ("image" in s and "imageRepository" in s),
    "Image must include a tag and allowed characters only (e.g., 'repo:tag').":
        lambda s: re.fullmatch(r"[a-zA-Z0-9._-]+(:[0-9]+)?(/[a-zA-Z0-9._/-]+)?(:[a-zA-Z0-9._-]+)?(@sha256:[a-z0-9]+)?", s)
        is not None,
    "If type is Remote, remote field needs to be set.":
        lambda s: ("remote" in s) if s.get("type", "Local") == "Remote" else ("remote" not in s),
    "If type is Local, local field needs to be set.": lambda s: s.get("type", "Local") != "Local" or "local" in s,
    "If type is Remote, local field must not be set.": lambda s: s.get("type", "Local") != "Remote" or "local" not in s,
    "one of before or after must be specified": lambda s: "before" in s or "after" in s,
    "only one of before or after can be specified": lambda s: ("before" in s) != ("after" in s),
}


def cel_errors(openapi, instance, path="", out=None):
    """Evaluates the x-kubernetes-validations met on `instance`'s nodes."""
    out = [] if out is None else out
    for rule in openapi.get("x-kubernetes-validations", []):
        check = CEL.get(rule["message"])
        if check is None:
            out.append(f"{path or '/'}: CEL rule not evaluated by this test: {rule['message']!r} "
                       f"({rule['rule']}); add it to CEL")
        elif not check(instance):
            out.append(f"{path or '/'}: {rule['message']}")
    if isinstance(instance, dict):
        props = openapi.get("properties", {})
        extra = openapi.get("additionalProperties")
        for key, value in instance.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                cel_errors(sub, value, f"{path}/{key}", out)
    elif isinstance(instance, list) and isinstance(openapi.get("items"), dict):
        for i, value in enumerate(instance):
            cel_errors(openapi["items"], value, f"{path}[{i}]", out)
    return out


def crd_errors(doc):
    """What the API server would refuse in a manifest of a kind we have the CRD of."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    known = crds()
    assert key in known, f"no CRD for {key}"
    openapi, js = known[key]
    errors = [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft7Validator(js).iter_errors(doc)]
    return errors + cel_errors(openapi, doc)


# ---------------------------------------------------------------- the manifests

def manifest_files():
    return sorted(p for p in DEPLOY.rglob("*.yaml") if CRD_DIR not in p.parents)


def documents(path):
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d is not None]


def all_documents():
    return [(p, d) for p in manifest_files() for d in documents(p)]


def plugin_configs(doc):
    """The plugin configurations a manifest embeds: [(where, config)]."""
    if doc["kind"] == "WasmPlugin":
        return [("spec.pluginConfig", doc["spec"].get("pluginConfig", {}))]
    if doc["kind"] == "EnvoyExtensionPolicy":
        return [(f"spec.{field}[{i}].config", f_.get("config", {}))
                for field in ("wasm", "dynamicModule") for i, f_ in enumerate(doc["spec"].get(field, []))]
    return []


def doc_id(item):
    path, doc = item
    return f"{path.relative_to(DEPLOY)}:{doc['kind']}/{doc['metadata']['name']}"


DOCS = all_documents()
CR_DOCS = [(p, d) for p, d in DOCS if d["kind"] in ("WasmPlugin", "EnvoyExtensionPolicy")]
CONFIGS = [(p, d, where, c) for p, d in CR_DOCS for where, c in plugin_configs(d)]


def test_the_examples_are_all_there():
    rel = {str(p.relative_to(DEPLOY)) for p in manifest_files()}
    assert {"istio/wasmplugin.yaml", "envoy-gateway/envoyextensionpolicy.yaml",
            "envoy-gateway/envoyextensionpolicy-http.yaml", "envoy-gateway/envoyextensionpolicy-native.yaml",
            "envoy-gateway/envoyproxy-native.yaml"} <= rel
    kinds = sorted(d["kind"] for _, d in CR_DOCS)
    assert kinds == ["EnvoyExtensionPolicy", "EnvoyExtensionPolicy", "EnvoyExtensionPolicy", "WasmPlugin"]
    code_types = sorted(w["code"]["type"] for _, d in CR_DOCS if d["kind"] == "EnvoyExtensionPolicy"
                        for w in d["spec"].get("wasm", []))
    assert code_types == ["HTTP", "Image"]


@pytest.mark.parametrize("item", DOCS, ids=[doc_id(i) for i in DOCS])
def test_manifest_is_valid(item):
    path, doc = item
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in crds():
        assert crd_errors(doc) == [], f"{path}"
    else:
        assert key in KINDS_WITHOUT_CRD, f"{path}: {key} has no CRD here and is not a known example kind"
        assert jsonschema.Draft7Validator(METADATA_SCHEMA).is_valid(doc.get("metadata")), path
        assert isinstance(doc.get("spec"), dict), path


@pytest.mark.parametrize("item", CONFIGS, ids=[f"{doc_id((p, d))}:{w}" for p, d, w, _ in CONFIGS])
def test_embedded_plugin_config_passes_schema_and_parser(cors_explain, item):
    path, doc, where, config = item
    assert config, f"{path}: {where} is empty"
    assert schema_errors(config) == [], f"{path}: {where}"
    accepted, message = cors_explain.verdict(config)
    assert accepted, f"{path}: {where}: the filter refuses it: {message}"


def test_istio_plugin_is_placed_before_authentication_and_pinned():
    (path, wp), = [(p, d) for p, d in CR_DOCS if d["kind"] == "WasmPlugin"]
    spec = wp["spec"]
    assert spec["phase"] == "AUTHN"
    assert spec["url"].startswith("oci://")
    assert re.fullmatch(r"[0-9a-f]{64}", spec["sha256"])
    assert spec["failStrategy"] in ("FAIL_OPEN", "FAIL_RELOAD")


def cargo_version():
    return re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)


def test_image_tags_and_release_urls_name_the_crate_version():
    version = cargo_version()
    for path, doc in CR_DOCS:
        if doc["kind"] == "WasmPlugin":
            assert doc["spec"]["url"].endswith(f":{version}"), path
        for w in doc["spec"].get("wasm", []):
            code = w["code"]
            if code["type"] == "Image":
                assert code["image"]["url"].endswith(f":{version}"), path
            else:
                assert f"/v{version}/" in code["http"]["url"], path


# ---------------------------------------------------------------- route and virtual host names

def istio_names():
    """Route and virtual host names Istio generates for the example VirtualServices: a route is
    named after `http[].name`, plus `.<match name>` when the match has a name; a gateway virtual
    host is `<host>:<port>`."""
    docs = [d for p, d in DOCS if p.parent.name == "istio"]
    gateways = {f"{d['metadata'].get('namespace', 'default')}/{d['metadata']['name']}": d
                for d in docs if d["kind"] == "Gateway"}
    routes, vhosts = set(), set()
    for vs in (d for d in docs if d["kind"] == "VirtualService"):
        for http in vs["spec"].get("http", []):
            matches = http.get("match") or [{}]
            for m in matches:
                routes.add(f"{http['name']}.{m['name']}" if m.get("name") else http["name"])
        for gw in vs["spec"].get("gateways", []):
            ports = [s["port"]["number"] for s in gateways[gw]["spec"]["servers"]]
            vhosts |= {f"{h}:{port}" for h in vs["spec"]["hosts"] for port in ports}
    return routes, vhosts


def envoy_gateway_names(target_routes):
    """Names Envoy Gateway generates for the targeted HTTPRoutes:
    `httproute/<ns>/<name>/rule/<i>/match/<j>/<hostname, . as _>` and virtual hosts
    `<gateway ns>/<gateway>/<listener>/<hostname, . as _>`."""
    docs = [d for p, d in DOCS if p.parent.name == "envoy-gateway"]
    gateways = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Gateway"}
    routes, vhosts = set(), set()
    for hr in (d for d in docs if d["kind"] == "HTTPRoute" and d["metadata"]["name"] in target_routes):
        ns, name = hr["metadata"].get("namespace", "default"), hr["metadata"]["name"]
        hosts = [h.replace(".", "_") for h in hr["spec"]["hostnames"]]
        for i, rule in enumerate(hr["spec"]["rules"]):
            for j, _ in enumerate(rule.get("matches") or [{}]):
                routes |= {f"httproute/{ns}/{name}/rule/{i}/match/{j}/{h}" for h in hosts}
        for parent in hr["spec"]["parentRefs"]:
            gw = gateways[parent["name"]]
            gw_ns = gw["metadata"].get("namespace", "default")
            vhosts |= {f"{gw_ns}/{gw['metadata']['name']}/{l['name']}/{h}"
                       for l in gw["spec"]["listeners"] for h in hosts}
    return routes, vhosts


def test_istio_config_names_routes_and_virtual_hosts_that_exist():
    routes, vhosts = istio_names()
    assert {"health", "public.v1", "api", "admin"} == routes
    (_, wp), = [(p, d) for p, d in CR_DOCS if d["kind"] == "WasmPlugin"]
    config = wp["spec"]["pluginConfig"]
    assert set(config.get("routes", {})) <= routes, sorted(routes)
    assert set(config.get("virtual_hosts", {})) <= vhosts, sorted(vhosts)
    assert None in config["routes"].values(), "the example shows how null turns CORS off"


@pytest.mark.parametrize("item", [i for i in CR_DOCS if i[1]["kind"] == "EnvoyExtensionPolicy"],
                         ids=lambda i: str(i[0].relative_to(DEPLOY)))
def test_envoy_gateway_config_names_routes_that_the_policy_targets(item):
    path, eep = item
    targets = {r["name"] for r in eep["spec"]["targetRefs"] if r["kind"] == "HTTPRoute"}
    routes, vhosts = envoy_gateway_names(targets)
    assert "httproute/default/backend/rule/0/match/0/www_example_com" in routes
    assert "default/eg/http/www_example_com" in vhosts
    for w in eep["spec"].get("wasm", []) + eep["spec"].get("dynamicModule", []):
        assert set(w["config"].get("routes", {})) <= routes, (path, sorted(routes))
        assert set(w["config"].get("virtual_hosts", {})) <= vhosts, (path, sorted(vhosts))
        assert None in w["config"]["routes"].values(), "the example shows how null turns CORS off"


def native_envoyproxy():
    """The EnvoyProxy that registers the native module (envoyproxy-native.yaml)."""
    (_, proxy), = [(p, d) for p, d in DOCS if d["kind"] == "EnvoyProxy" and "dynamicModules" in d["spec"]]
    return proxy


def test_the_native_policy_uses_a_module_that_the_envoyproxy_registers_on_envoy_1_40():
    (_, eep), = [(p, d) for p, d in CR_DOCS if "dynamicModule" in d["spec"]]
    proxy = native_envoyproxy()
    registered = {m["name"] for m in proxy["spec"]["dynamicModules"]}
    assert {m["name"] for m in eep["spec"]["dynamicModule"]} <= registered
    assert [m["filterName"] for m in eep["spec"]["dynamicModule"]] == ["cors"]
    # Built for Envoy 1.40: loads in 1.40 and 1.41 only (docs/native.md), so the proxy's Envoy is
    # pinned to one of those (an official image, plain or distroless).
    image = proxy["spec"]["provider"]["kubernetes"]["envoyDeployment"]["container"]["image"]
    assert re.fullmatch(r"(docker\.io/)?envoyproxy/envoy:(distroless-)?v1\.4[01]\.\d+", image), image


def test_the_native_module_comes_from_the_native_image_pinned_by_digest_and_mounted_where_it_is_loaded():
    """The EnvoyProxy mounts the image `make dist` builds (scripts/oci.py NATIVE, its only file
    at the root of the image) as an image volume, and registers the file under that mount."""
    deployment = native_envoyproxy()["spec"]["provider"]["kubernetes"]["envoyDeployment"]
    volumes = {v["name"]: v for v in deployment["pod"]["volumes"]}
    (mount,) = deployment["container"]["volumeMounts"]
    assert mount["readOnly"] is True
    image = volumes[mount["name"]]["image"]
    # <repository>:<crate version>@sha256:<manifest digest>: the tag says which release, the
    # digest is what the kubelet pulls (a placeholder here, the real one in dist/deploy/).
    repository, tag, _ = re.fullmatch(r"([^:@]+):([^:@]+)@sha256:([0-9a-f]{64})", image["reference"]).groups()
    assert repository == NATIVE_IMAGE.example_image and tag == cargo_version()
    (module,) = native_envoyproxy()["spec"]["dynamicModules"]
    assert module["source"]["type"] == "Local"
    assert module["source"]["local"]["path"] == f"{mount['mountPath']}/{NATIVE_IMAGE.path_in_layer}"


# ---------------------------------------------------------------- broken examples are refused

def _istio():
    return copy.deepcopy(next(d for _, d in CR_DOCS if d["kind"] == "WasmPlugin"))


def _eg(code_type="Image"):
    return copy.deepcopy(next(d for _, d in CR_DOCS if d["kind"] == "EnvoyExtensionPolicy"
                              and d["spec"].get("wasm", [{"code": {}}])[0]["code"].get("type") == code_type))


def _set(doc, dotted, value):
    node = doc
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


_DELETE = object()

BROKEN = {
    "istio-unknown-phase": (_istio, "spec.phase", "AUTH", "phase"),
    "istio-misspelt-field": (_istio, "spec.pluginConfg", {}, "pluginConfg"),
    "istio-short-sha256": (_istio, "spec.sha256", "abc123", "sha256"),
    "istio-ftp-url": (_istio, "spec.url", "ftp://example.com/cors.wasm", "url must have schema"),
    "istio-selector-and-targetRefs": (_istio, "spec.targetRefs",
                                      [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "g"}],
                                      "only one of targetRefs or selector"),
    "istio-no-url": (_istio, "spec.url", _DELETE, "'url' is a required property"),
    "istio-wrong-api-version": (_istio, "apiVersion", "extensions.istio.io/v1", "no CRD"),
    "eg-unknown-code-type": (_eg, "spec.wasm.0.code.type", "OCI", "type"),
    "eg-image-with-http": (lambda: _eg("Image"), "spec.wasm.0.code.http", {"url": "https://a.example/x.wasm"},
                           "If type is HTTP, http field needs to be set."),
    "eg-target-a-service": (_eg, "spec.targetRefs.0.kind", "Service", "targetRefs[*].kind"),
    "eg-no-target": (_eg, "spec.targetRefs", _DELETE, "either targetRef or targetRefs"),
    "eg-failopen-string": (_eg, "spec.wasm.0.failOpen", "yes", "failOpen"),
    "eg-misspelt-field": (_eg, "spec.wasm.0.rootId", "cors", "rootId"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_manifest_is_refused(name):
    make, dotted, value, expect = BROKEN[name]
    doc = _set(make(), dotted, value)
    try:
        errors = crd_errors(doc)
    except AssertionError as e:  # unknown apiVersion/kind
        errors = [str(e)]
    assert errors, f"{name}: accepted"
    assert any(expect in e for e in errors), f"{name}: {errors}"


@pytest.mark.parametrize("where", ["istio", "envoy-gateway"])
def test_broken_plugin_config_in_a_manifest_is_refused(cors_explain, where):
    doc = _istio() if where == "istio" else _eg()
    config = doc["spec"]["pluginConfig"] if where == "istio" else doc["spec"]["wasm"][0]["config"]
    config["policy"]["allow_origins"] = ["*"]  # with allow_credentials: true
    assert crd_errors(doc) == [], "the CRD cannot see inside the plugin config"
    assert schema_errors(config)
    accepted, message = cors_explain.verdict(config)
    assert not accepted and message.startswith("policy.allow_credentials:"), message


def test_unevaluated_cel_rule_is_an_error():
    openapi = {"type": "object", "x-kubernetes-validations": [{"rule": "self.a > 1", "message": "made up"}]}
    assert cel_errors(openapi, {"a": 2}) and "not evaluated" in cel_errors(openapi, {"a": 2})[0]


def test_openapi_translation():
    js = to_json_schema({
        "type": "object",
        "properties": {"n": {"type": "integer", "nullable": True},
                       "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    })
    v = jsonschema.Draft7Validator(js)
    assert v.is_valid({"n": None, "free": {"anything": [1]}})
    assert not v.is_valid({"n": "x"})
    assert not v.is_valid({"unknown": 1})


# ---------------------------------------------------------------- the CRD copies

def _sums():
    lines = (CRD_DIR / "SHA256SUMS").read_text().split("\n")
    return {name: digest for digest, name in (l.split() for l in lines if l.strip())}


def test_crd_copies_match_their_recorded_checksums():
    sums = _sums()
    assert set(sums) == set(CRD_FILES)
    for name in CRD_FILES:
        assert hashlib.sha256((CRD_DIR / name).read_bytes()).hexdigest() == sums[name], name


def test_crd_copies_are_identical_to_the_shared_originals():
    if not SHARED_CRDS.is_dir():
        # ../shared sits beside the team's checkout, not necessarily beside every clone (CI);
        # without it the copies are still held to their recorded checksums (test above).
        pytest.skip(f"{SHARED_CRDS} is missing: the CRD copies are checked against deploy/crds/SHA256SUMS only")
    for name in CRD_FILES:
        assert (CRD_DIR / name).read_bytes() == (SHARED_CRDS / name).read_bytes(), name


# ---------------------------------------------------------------- the examples in docs/deploy.md

def deploy_md_before_team_section():
    """docs/deploy.md up to "Each team keeps its own CORS", whose manifests (other routes, several
    policies) tests/test_team_ownership.py checks."""
    return (ROOT / "docs" / "deploy.md").read_text().split("\n## Each team keeps its own CORS\n", 1)[0]


def doc_config_snippets():
    """The ```yaml blocks of docs/deploy.md that are a `pluginConfig:` (Istio) or `config:`
    (Envoy Gateway) of our filter."""
    text = deploy_md_before_team_section()
    out = []
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        doc = yaml.safe_load(block)
        if isinstance(doc, dict) and len(doc) == 1 and next(iter(doc)) in ("pluginConfig", "config"):
            out.append((next(iter(doc)), next(iter(doc.values()))))
    return out


def test_docs_config_examples_are_accepted_and_name_real_routes(cors_explain):
    snippets = doc_config_snippets()
    assert [k for k, _ in snippets] == ["pluginConfig", "config"]
    istio_routes, _ = istio_names()
    eg_routes, _ = envoy_gateway_names({"backend"})
    for key, config in snippets:
        assert schema_errors(config) == [], key
        accepted, message = cors_explain.verdict(config)
        assert accepted, f"docs/deploy.md {key}: {message}"
        assert set(config["routes"]) <= (istio_routes if key == "pluginConfig" else eg_routes), key


def test_docs_native_alternatives_are_valid_and_keep_the_module_path():
    """docs/deploy.md's alternatives to the image volume: the ```yaml blocks that are whole
    manifests of a kind we have the CRD of (the init-container EnvoyProxy), as the API server would
    check them, and the derived image's Dockerfile, both putting the module where
    envoyproxy-native.yaml registers it."""
    text = deploy_md_before_team_section()
    docs = [d for block in re.findall(r"```yaml\n(.*?)```", text, re.S) for d in yaml.safe_load_all(block)
            if isinstance(d, dict) and (d.get("apiVersion"), d.get("kind")) in crds()]
    assert [d["kind"] for d in docs] == ["EnvoyProxy"]
    for doc in docs:
        assert crd_errors(doc) == [], doc["metadata"]["name"]
        assert doc["spec"]["dynamicModules"] == native_envoyproxy()["spec"]["dynamicModules"]
    (path,) = [m["source"]["local"]["path"] for m in native_envoyproxy()["spec"]["dynamicModules"]]
    (dockerfile,) = re.findall(r"```dockerfile\n(.*?)```", text, re.S)
    assert re.search(r"^FROM envoyproxy/envoy:(distroless-)?v1\.4[01]\.\d+$", dockerfile, re.M), dockerfile
    assert f"COPY {NATIVE_IMAGE.path_in_layer} {path}\n" in dockerfile
    assert f"ENV ENVOY_DYNAMIC_MODULES_SEARCH_PATH={path.rsplit('/', 1)[0]}\n" in dockerfile
