"""Agreement between `cors-explain --json` and the filter in a real Envoy.

One Envoy (concurrency 1) runs three listeners with our filter: `main` (plugin configuration as an
inline Struct; policies under `policy`, `routes`, `virtual_hosts`, in route metadata, null
entries, an invalid metadata policy, shadow mode, filter_enabled 0%) and `json` (configuration as
a JSON StringValue; every string-matcher kind, credentials, 403 for refused preflights,
route metadata lookups off), and `bare` (only `routes`: no policy elsewhere). A seeded generator makes 800 varied requests (preflights and
actual requests, allowed and refused, with and without Origin, private network, OPTIONS without
Access-Control-Request-Method, upstreams that set their own CORS headers). Each one is sent to
Envoy over keep-alive connections, and the same requests go through `cors-explain --requests`
(one process per listener) reading the very Envoy config Envoy runs (as YAML for one listener,
JSON for the other), half located by `--path`/`--host`, half by `--route`/`--vhost`.

Compared per request: status, whether it reached the upstream (`x-upstream: hit`), and every
CORS response header, `Vary` and `x-cors-reason`. Zero differences allowed. Then the debug log
must hold cors-explain's reason for every refusal, and /stats the counters cors-explain named.
"""

import json
import random
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.harness import envoy

COMPARED = {
    "access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods",
    "access-control-allow-headers", "access-control-allow-private-network", "access-control-expose-headers",
    "access-control-max-age", "vary", "x-cors-reason",
}

PERCENT_0 = envoy.percent(0)
PERCENT_100 = envoy.percent(100)

MAIN_CONFIG = {
    "route_metadata_namespace": "cors",
    "policy": {
        "allow_origins": ["https://app.example", "https://*.good.example", "http://localhost:3000"],
        "allow_methods": "GET, PUT, DELETE",
        "allow_headers": "content-type, x-token",
        "expose_headers": "x-total",
        "max_age": 600,
    },
    "routes": {
        "api": {
            "allow_origin_string_match": [{"exact": "https://app.example"}, {"suffix": ".partner.example"}],
            "allow_credentials": True, "allow_methods": "*", "allow_headers": "*",
            "expose_headers": ["x-total", "x-secret"], "max_age": "86400", "debug_reason_header": True,
        },
        "off": None,
        "cors-upstream": {"allow_origins": ["https://app.example"], "debug_reason_header": True},
        "shadow": {"allow_origins": ["https://app.example"], "filter_enabled": PERCENT_0,
                   "shadow_enabled": PERCENT_100},
        "disabled": {"allow_origins": ["https://app.example"], "filter_enabled": PERCENT_0},
    },
    "virtual_hosts": {
        "public": {"allow_origins": ["*"], "allow_methods": "GET, POST", "allow_headers": "*", "expose_headers": "*"},
        "closed": None,
        "local": {"allow_origins": ["http://localhost:3000", "null"], "allow_private_network_access": True,
                  "allow_methods": "GET, POST, PATCH", "forward_not_matching_preflights": False,
                  "debug_reason_header": True},
    },
}

JSON_CONFIG = {
    "policy": {
        "allow_origin_string_match": [
            {"safe_regex": {"regex": "https://[a-z]+\\.regex\\.example"}},
            {"prefix": "http://localhost:"},
            {"exact": "HTTPS://UPPER.EXAMPLE", "ignore_case": True},
            {"contains": "partner"},
        ],
        "allow_credentials": True, "allow_methods": "GET, POST, PATCH",
        "allow_headers": "authorization, content-type", "forward_not_matching_preflights": False,
        "debug_reason_header": True,
    },
    "route_metadata_namespace": None,
    "routes": {"open": {"allow_origins": ["*"], "allow_methods": "*", "allow_headers": "*",
                        "allow_private_network_access": True}},
}

# No default policy: requests on other routes get no policy at all.
BARE_CONFIG = {"routes": {"r1": {"allow_origins": ["https://app.example"], "allow_methods": "PUT"}}}

META_POLICY = {"allow_origins": ["https://meta.example"], "allow_methods": ["PATCH"], "debug_reason_header": True}

# (host, path) -> (virtual host, route) as Envoy routes them; route None: unnamed.
MAIN_TARGETS = {
    ("api.test", "/api/items"): ("api-host", "api"),
    ("api.test", "/meta/x"): ("api-host", "meta"),
    ("api.test", "/meta-bad/x"): ("api-host", "meta-bad"),
    ("api.test", "/off/x"): ("api-host", "off"),
    ("api.test", "/cors-upstream/x"): ("api-host", "cors-upstream"),
    ("api.test", "/shadow"): ("api-host", "shadow"),
    ("api.test", "/disabled"): ("api-host", "disabled"),
    ("api.test", "/other"): ("api-host", None),
    ("public.test", "/p"): ("public", "pub"),
    ("closed.test", "/c"): ("closed", "closed-route"),
    ("local.test", "/l"): ("local", "local-route"),
    ("anything.test", "/z"): ("fallback", "fallback-route"),
}
JSON_TARGETS = {
    ("j.test", "/open/1"): ("jv", "open"),
    ("j.test", "/j"): ("jv", "j"),
    ("j.test", "/cors-upstream/j"): ("jv", "j-upstream"),
}
BARE_TARGETS = {
    ("bare.test", "/r1/x"): ("bv", "r1"),
    ("bare.test", "/r2"): ("bv", "r2"),
}
TARGETS = {"main": MAIN_TARGETS, "json": JSON_TARGETS, "bare": BARE_TARGETS}

ORIGINS = [
    "https://app.example", "https://x.good.example", "https://good.example", "https://evil.example",
    "https://a.partner.example", "https://meta.example", "null", "http://localhost:3000",
    "http://localhost:3001", "https://abc.regex.example", "https://ABC.regex.example",
    "https://upper.example", "https://app.example/", "https://app.example:443", None,
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OPTIONS", "OPTIONS", "OPTIONS"]
REQUEST_METHODS = ["GET", "PUT", "DELETE", "PATCH", "POST", "get", "", None]
REQUEST_HEADERS = [None, "content-type", "x-token", "content-type, x-token", "authorization",
                   "X-Custom, authorization", "Content-Type,X-Token"]

UPSTREAM_BASE = [["x-upstream", "hit"], ["x-total", "42"], ["x-secret", "hidden"]]
UPSTREAM_CORS = UPSTREAM_BASE + [
    ["access-control-allow-origin", "https://upstream-chose.example"],
    ["access-control-allow-credentials", "true"],
    ["access-control-allow-methods", "DELETE"],
    ["vary", "Accept-Encoding"],
]


def routes_for(targets, metadata):
    vhosts = {}
    for (host, path), (vh, name) in targets.items():
        v = vhosts.setdefault(vh, {"name": vh, "domains": ["*" if vh == "fallback" else host], "routes": []})
        segments = path.split("/")
        prefix = "/" + segments[1] + ("/" if len(segments) > 2 else "")
        r = {"match": {"prefix": prefix}, "route": {"cluster": "upstream"}}
        if name:
            r["name"] = name
        if name in metadata:
            r["metadata"] = {"filter_metadata": {"cors": metadata[name]}}
        v["routes"].append(r)
    return list(vhosts.values())


@pytest.fixture(scope="module")
def proxy(tmp_path_factory, cors_explain):
    ports = {name: envoy.free_port() for name in ("main", "json", "bare")}
    main_routes = routes_for(MAIN_TARGETS, {"meta": META_POLICY, "meta-bad": {"allow_origins": "nope"}})
    json_routes = routes_for(JSON_TARGETS, {"j": META_POLICY})
    config = envoy.with_upstream([
        envoy.listener("main", ports["main"], [envoy.wasm_filter(MAIN_CONFIG, "struct", name="cors-main")],
                       main_routes),
        envoy.listener("json", ports["json"], [envoy.wasm_filter(JSON_CONFIG, "json", name="cors-json")],
                       json_routes),
        envoy.listener("bare", ports["bare"], [envoy.wasm_filter(BARE_CONFIG, "struct", name="cors-bare")],
                       routes_for(BARE_TARGETS, {})),
    ])
    proc = envoy.Envoy(config)
    d = tmp_path_factory.mktemp("explain")
    yaml_path = d / "envoy.yaml"
    yaml_path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        yield {"envoy": proc, "ports": ports, "files": {"main": yaml_path, "json": Path(proc.config_path), "bare": yaml_path},
               "dir": d, "explain": cors_explain.binary}
    finally:
        proc.stop()


def generate(n, seed=10):
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        listener = rnd.choices(["main", "json", "bare"], [0.6, 0.3, 0.1])[0]
        targets = TARGETS[listener]
        (host, path), (vh, route) = rnd.choice(sorted(targets.items(), key=str))
        method = rnd.choice(METHODS)
        req = {"id": i, "method": method, "origin": rnd.choice(ORIGINS)}
        if method == "OPTIONS" or rnd.random() < 0.1:
            req["request_method"] = rnd.choice(REQUEST_METHODS)
            req["request_headers"] = rnd.choice(REQUEST_HEADERS)
            req["private_network"] = rnd.random() < 0.2
        if rnd.random() < 0.5 or route is None:
            req.update(host=host, path=path)
        else:
            req.update(route=route, vhost=vh)
        req["upstream_headers"] = UPSTREAM_CORS if path.startswith("/cors-upstream") else UPSTREAM_BASE
        out.append((listener, host, path, {k: v for k, v in req.items() if v is not None}))
    return out


def wire_headers(req):
    h = []
    if "origin" in req:
        h.append(("origin", req["origin"]))
    if req.get("request_method") is not None:
        h.append(("access-control-request-method", req["request_method"]))
    if req.get("request_headers") is not None:
        h.append(("access-control-request-headers", req["request_headers"]))
    if req.get("private_network"):
        h.append(("access-control-request-private-network", "true"))
    return h


def explain_batch(proxy, listener, reqs):
    d = proxy["dir"]
    path = d / f"requests-{listener}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in reqs))
    p = subprocess.run([str(proxy["explain"]), str(proxy["files"][listener]), "--listener", listener,
                        "--requests", str(path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(lines) == len(reqs)
    return {line["id"]: line for line in lines}


def observed(status, headers):
    return {
        "status": status,
        "forwarded": ("x-upstream", "hit") in headers,
        "headers": sorted((k, v) for k, v in headers if k in COMPARED),
    }


def predicted(ex):
    return {
        "status": ex["status"] if ex["status"] is not None else 200,
        "forwarded": ex["forwarded"],
        "headers": sorted((k, v) for k, v in ex["headers"] if k in COMPARED),
    }


@pytest.fixture(scope="module")
def results(proxy):
    cases = generate(800)
    explained = {}
    for listener in TARGETS:
        explained.update(explain_batch(proxy, listener, [r for l, _, _, r in cases if l == listener]))
    client = envoy.Client()
    start = time.time()
    try:
        answers = {
            req["id"]: client.send(proxy["ports"][listener], req["method"], path, wire_headers(req), host)
            for listener, host, path, req in cases
        }
    finally:
        client.close()
    print(f"\n{len(cases)} requests to Envoy in {time.time() - start:.2f}s")
    return cases, explained, answers


def test_cors_explain_agrees_with_the_filter_on_every_request(results):
    cases, explained, answers = results
    diffs = []
    for listener, host, path, req in cases:
        want, got = predicted(explained[req["id"]]), observed(*answers[req["id"]])
        if want != got:
            diffs.append(f"{listener} {host}{path} {req}\n  cors-explain: {want}\n  envoy:        {got}")
    print(f"compared {len(cases)} requests, {len(diffs)} differences")
    assert not diffs, f"{len(diffs)} differences:\n" + "\n".join(diffs[:10])
    assert len(cases) >= 500


def test_the_requests_cover_every_outcome_source_and_refusal(results):
    _, explained, answers = results
    ex = list(explained.values())
    assert {e["decision"] for e in ex} == {"answered_preflight", "refused", "forwarded", "passed_through"}
    assert {e["selected_by"]["source"] for e in ex} >= {"route", "virtual_host", "default", "route_metadata", "none"}
    assert {e["refusal"] for e in ex} == {None, "origin", "method", "headers", "private_network"}
    assert {e["kind"] for e in ex} == {"preflight", "actual", None}
    assert {e["status"] for e in ex} == {200, 403, None}
    assert any(e["shadow"] for e in ex)
    # x-cors-reason (debug_reason_header) appears on refused preflights and refused actual responses.
    with_reason = [e for e in ex if any(n == "x-cors-reason" for n, _ in e["headers"])]
    assert {e["kind"] for e in with_reason} == {"preflight", "actual"}
    assert all(dict(e["headers"])["x-cors-reason"] == e["reason"] for e in with_reason)
    assert any(("x-cors-reason", e["reason"]) in answers[e["id"]][1] for e in with_reason)


def test_debug_log_holds_the_reason_cors_explain_gives_for_each_refusal(proxy, results):
    _, explained, _ = results
    expected = set()
    for e in explained.values():
        if e["reason"]:
            expected.add("refused: " + e["reason"] + (" (shadow mode: not enforced)" if e["shadow"] else ""))
    assert len(expected) > 20
    log = proxy["envoy"].wait_log(*expected)
    missing = [line for line in expected if line not in log]
    assert not missing, missing[:5]


def test_stats_counters_are_the_ones_cors_explain_names(proxy, results):
    _, explained, _ = results
    want = Counter(e["counter"] for e in explained.values() if e["counter"])
    assert len(want) >= 8
    # The filter adds its counts to Envoy's on a 1 s timer: until every count is in.
    counted = lambda: {name: n for name, n in proxy["envoy"].filter_counters().items() if n}  # noqa: E731
    envoy.poll(lambda: counted() == want, 5)
    assert counted() == want
