"""The two models of the browser agree: tests/harness/fetch_model.py (what the differential test
judges responses by) and cors-explain's `browser.rs` (what `cors-explain` tells a developer).

A seeded generator makes policies (credentials, wildcards, lists, private network, forwarding of
refused preflights) and requests to them (preflights and actual requests, allowed and refused
origins, requested methods and headers, upstreams that send their own CORS headers and statuses).
`cors-explain --requests` gives, for each, the headers a browser gets and its verdict with and
without credentials; the fetch model judges the same headers. Every verdict must be equal.
"""

import json
import random
import subprocess

import pytest

from tests.harness import fetch_model as fm

ORIGINS = ["https://app.example", "https://other.example", "http://app.example:8080", "null"]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]
REQUEST_HEADERS = ["content-type", "x-a", "x-b", "authorization", "accept"]
UPSTREAM_CORS = [
    ("access-control-allow-origin", "*"), ("access-control-allow-origin", "https://app.example"),
    ("access-control-allow-credentials", "true"), ("access-control-allow-methods", "PUT, DELETE"),
    ("access-control-allow-headers", "x-a"), ("access-control-expose-headers", "x-total"),
]


def some(rng, items, k_max):
    return rng.sample(items, rng.randint(0, min(k_max, len(items))))


def policy(rng):
    credentials = rng.random() < 0.5
    wildcard = not credentials and rng.random() < 0.3
    p = {
        "allow_origins": ["*"] if wildcard else rng.sample(ORIGINS[:3], rng.randint(1, 2)),
        "allow_methods": "*" if wildcard and rng.random() < 0.5 else ", ".join(rng.sample(METHODS, 2)),
        "allow_headers": "*" if wildcard and rng.random() < 0.5 else ", ".join(some(rng, REQUEST_HEADERS, 3)),
        "allow_credentials": credentials,
        "forward_not_matching_preflights": rng.random() < 0.5,
        "allow_private_network_access": rng.random() < 0.3,
    }
    if rng.random() < 0.5:
        p["expose_headers"] = "*" if wildcard and rng.random() < 0.5 else "x-total"
    if rng.random() < 0.5:
        p["max_age"] = str(rng.choice([0, 600]))
    return {k: v for k, v in p.items() if v != ""}


def request(rng, route, n):
    origin = rng.choice(ORIGINS)
    req = {"id": n, "route": route, "origin": origin}
    if rng.random() < 0.6:
        req["method"] = "OPTIONS"
        req["request_method"] = rng.choice(METHODS)
        names = some(rng, REQUEST_HEADERS, 3)
        if names:
            req["request_headers"] = ", ".join(names)
        req["private_network"] = rng.random() < 0.2
    else:
        req["method"] = rng.choice(METHODS)
    if rng.random() < 0.4:
        req["upstream_headers"] = some(rng, UPSTREAM_CORS, 3)
    if rng.random() < 0.2:
        req["upstream_status"] = rng.choice([204, 403, 500])
    return req


def fetch_model_allows(ex, credentials):
    """The fetch model's verdict on what cors-explain says the browser gets."""
    req = ex["request"]
    origin = req["origin"]
    headers = [tuple(h) for h in ex["headers"]]
    if ex["kind"] != "preflight":
        return fm.cors_check(headers, origin, credentials)
    status = ex["status"] if ex["status"] is not None else ex["upstream_status"]
    requested = [n.strip().lower() for n in req.get("request_headers", "").split(",") if n.strip()]
    answer = fm.preflight_outcome(status, headers, origin, req["request_method"], requested, credentials,
                                  req.get("private_network", False))
    if answer is None:
        return False
    then = ex["then"]
    return then is None or fm.cors_check([tuple(h) for h in then["headers"]], origin, credentials)


@pytest.fixture(scope="module")
def explained(cors_explain, tmp_path_factory):
    rng = random.Random(22)
    routes = {}
    while len(routes) < 40:
        p = policy(rng)
        if cors_explain.verdict({"policy": p})[0]:  # combinations the filter refuses at load are left out
            routes[f"r{len(routes)}"] = p
    requests = [request(rng, rng.choice(list(routes)), n) for n in range(1500)]
    d = tmp_path_factory.mktemp("browser-models")
    (d / "config.json").write_text(json.dumps({"routes": routes}))
    (d / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in requests))
    p = subprocess.run([str(cors_explain.binary), str(d / "config.json"), "--requests", str(d / "requests.jsonl")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(lines) == len(requests) and not any("error" in line for line in lines)
    for line, req in zip(lines, requests):
        line["upstream_status"] = req.get("upstream_status", 200)
    return lines


def test_fetch_model_and_cors_explain_give_every_browser_verdict_alike(explained):
    differences = []
    for ex in explained:
        for credentials, mode in ((False, "without_credentials"), (True, "with_credentials")):
            ours = fetch_model_allows(ex, credentials)
            theirs = ex["browser"][mode]["allowed"]
            if ours != theirs:
                differences.append((ex["request"], mode, ours, ex["browser"][mode]["message"], ex["headers"]))
    assert not differences, "\n".join(map(str, differences[:10]))


def test_the_cases_cover_both_verdicts_of_both_kinds(explained):
    seen = {(ex["kind"], ex["browser"][mode]["allowed"])
            for ex in explained for mode in ("without_credentials", "with_credentials")}
    assert seen == {(kind, allowed) for kind in ("preflight", "actual") for allowed in (True, False)}
