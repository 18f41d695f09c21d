"""Go's table for `cross_origin_protection`, replayed through the filter in Envoy (issue 24.3),
in both builds.

The cases are those of golang/go `src/net/http/csrf_test.go` (the `TestCrossOriginProtection…`
tests of Go 1.25's `net/http.CrossOriginProtection`), rewritten here as data. Go's mapping:
`AddTrustedOrigin` is the policy's `allow_origins`; `AddInsecureBypassPattern` is a route whose
policy leaves the protection off (`routes` keyed by Envoy route name; Go's path cleaning and
trailing-slash redirect are Envoy's `normalize_path` and `path_separated_prefix`); Go's `Host`
is Envoy's `:authority`. A case passes when the filter lets the request reach the upstream (200)
and Go expects 200, or answers 403 itself and Go expects 403. `DIFFERENCES` lists, with the
reason, what is not replayed or differs; the test prints the counts."""

import pytest

from tests.harness.envoy import Client, Envoy, catch_all, cors_filter, hcm, listener, reached_upstream, route, \
    with_upstream

TRUSTED = "https://trusted.example"
PROTECTED = {"allow_origins": [TRUSTED], "cross_origin_protection": "enforce"}
# The bypass routes' policy: the same origins, the protection off.
BYPASSED = {"allow_origins": [TRUSTED]}

# (Go test, case name, method, path, Host, Sec-Fetch-Site, Origin, Go's status). "" = absent.
CASES = [
    *[("SecFetchSite", name, method, "/", "example.com", site, origin, status) for name, method, site, origin, status in [
        ("same-origin allowed", "POST", "same-origin", "", 200),
        ("none allowed", "POST", "none", "", 200),
        ("cross-site blocked", "POST", "cross-site", "", 403),
        ("same-site blocked", "POST", "same-site", "", 403),
        ("no header with no origin", "POST", "", "", 200),
        ("no header with matching origin", "POST", "", "https://example.com", 200),
        ("no header with mismatched origin", "POST", "", "https://attacker.example", 403),
        ("no header with null origin", "POST", "", "null", 403),
        ("GET allowed", "GET", "cross-site", "", 200),
        ("HEAD allowed", "HEAD", "cross-site", "", 200),
        ("OPTIONS allowed", "OPTIONS", "cross-site", "", 200),
        ("PUT blocked", "PUT", "cross-site", "", 403),
    ]],
    *[("TrustedOriginBypass", name, "POST", "/", "example.com", site, origin, status) for name, origin, site, status in [
        ("trusted origin without sec-fetch-site", TRUSTED, "", 200),
        ("trusted origin with cross-site", TRUSTED, "cross-site", 200),
        ("untrusted origin without sec-fetch-site", "https://attacker.example", "", 403),
        ("untrusted origin with cross-site", "https://attacker.example", "cross-site", 403),
    ]],
    *[("PatternBypass", name, "POST", path, "example.com", site, "https://attacker.example", status)
      for name, path, site, status in [
          ("bypass path without sec-fetch-site", "/bypass/", "", 200),
          ("bypass path with cross-site", "/bypass/", "cross-site", 200),
          ("non-bypass path without sec-fetch-site", "/api/", "", 403),
          ("non-bypass path with cross-site", "/api/", "cross-site", 403),
          ("redirect to bypass path without ..", "/foo/../bypass/bar", "", 200),
          ("redirect to bypass path with trailing slash", "/bypass", "", 200),
          ("redirect to non-bypass path with ..", "/foo/../api/bar", "", 403),
          ("redirect to non-bypass path with trailing slash", "/api", "", 403),
          ("wildcard bypass", "/only/123", "", 200),
          ("non-wildcard", "/only/123/foo", "", 403),
      ]],
    # The default deny handler's answers (the custom handler is in DIFFERENCES).
    ("SetDenyHandler", "default handler refuses", "POST", "/", "example.com", "cross-site", "", 403),
    ("SetDenyHandler", "GET passes", "GET", "/", "example.com", "", "", 200),
    ("SetDenyHandler", "nil handler refuses again", "POST", "/", "example.com", "cross-site", "", 403),
    # Before the trusted origin is added (see TRUSTED_LATER for after).
    ("AddingBypassesConcurrently", "before the bypasses", "POST", "/foo/", "example.com", "cross-site",
     "https://concurrent.example", 403),
    *[("Server", name, "POST", path, "127.0.0.1:{port}", site, origin, status) for name, path, origin, site, status in [
        ("cross-site", "/", "https://attacker.example", "cross-site", 403),
        ("same-origin", "/", "", "same-origin", 200),
        ("origin matches host", "/", "http://127.0.0.1:{port}", "", 200),
        ("trusted origin", "/", TRUSTED, "", 200),
        ("untrusted origin", "/", "https://attacker.example", "", 403),
        ("bypass path", "/bypass/", "https://attacker.example", "", 200),
    ]],
]

# Go's AddTrustedOrigin while requests run, then the same request: here a configuration that
# lists the origin (Envoy applies a new configuration to later requests; no lock to race).
TRUSTED_LATER = ("AddingBypassesConcurrently", "after the bypasses", "POST", "/foo/", "example.com", "cross-site",
                 "https://concurrent.example", 200)

# TestCrossOriginProtectionAddTrustedOriginErrors: Go's refusals of AddTrustedOrigin against
# the filter's of `allow_origins` (cors-explain --check: the filter's parser). (origin, Go refuses)
TRUSTED_ORIGIN_VALIDATION = [
    ("https://example.com", False), ("https://example.com:8080", False), ("http://example.com", False),
    ("example.com", True), ("https://", True), ("https://example.com/", True), ("https://example.com/path", True),
    ("https://example.com?query=value", True), ("https://example.com#fragment", True),
    ("https://ex ample.com", True), ("", True), ("null", True),
]
# Where the filter's answer differs from Go's, and why.
VALIDATION_DIFFERENCES = {
    "null": "allow_origins may list \"null\" explicitly, for sandboxed frames and file: pages (a CORS "
            "need; docs/security.md says what it lets in); Go's trusted origins cannot be null",
}

# What is not replayed, and why (each counts as a documented difference).
DIFFERENCES = {
    "SetDenyHandler: custom handler (418, \"custom error\")":
        "the filter's refusal is always a 403 without body; a different answer is Envoy's job "
        "(local_reply_config or the custom_response filter), not a policy field",
    "AddingBypassesConcurrently: adding while requests run":
        "configuration is static per version; replayed as two configurations (before, after)",
}


def go_listener(build, name, port, policy):
    routes = [
        route("bypass", match={"path_separated_prefix": "/bypass"}),
        route("only", match={"safe_regex": {"regex": "/only/[^/]+"}}),
        route(name),
    ]
    config = {"policy": policy, "routes": {"bypass": BYPASSED, "only": BYPASSED}}
    lst = listener(name, port, [cors_filter(build, config)], catch_all(name, routes))
    # Go's ServeMux cleans `..` before matching its patterns.
    hcm(lst)["normalize_path"] = True
    return lst


@pytest.fixture(scope="module")
def proxy(build):
    from tests.harness.envoy import free_port
    ports = {"go": free_port(), "later": free_port()}
    later = {**PROTECTED, "allow_origins": [TRUSTED, "https://concurrent.example"]}
    envoy = Envoy(with_upstream([go_listener(build, "go", ports["go"], PROTECTED),
                                 go_listener(build, "later", ports["later"], later)]))
    yield envoy, ports
    envoy.stop()
    assert "panicked" not in envoy.log()


def replay(client, port, case):
    _, _, method, path, host, site, origin, _ = case
    host = host.format(port=port)
    headers = [("sec-fetch-site", site)] if site else []
    if origin:
        headers.append(("origin", origin.format(port=port)))
    status, response = client.send(port, method, path, headers, host=host)
    if status == 403 and not reached_upstream(response):
        assert not [k for k, _ in response if k.startswith("access-control-")], response
        return 403
    assert status == 200 and reached_upstream(response), (status, response)
    return 200


def test_go_table_agrees_case_by_case(proxy, build):
    envoy, ports = proxy
    client = Client()
    disagreements = []
    for case in CASES:
        if replay(client, ports["go"], case) != case[-1]:
            disagreements.append(case)
    if replay(client, ports["later"], TRUSTED_LATER) != TRUSTED_LATER[-1]:
        disagreements.append(TRUSTED_LATER)
    client.close()
    replayed = len(CASES) + 1
    print(f"\n{build}: Go's csrf_test.go: {replayed - len(disagreements)} of {replayed} requests agree; "
          f"{len(DIFFERENCES)} behaviours not replayed (documented)")
    assert disagreements == []


def test_go_trusted_origin_validation_agrees_but_for_documented_differences(cors_explain):
    agree, differ = 0, []
    for origin, go_refuses in TRUSTED_ORIGIN_VALIDATION:
        accepted, message = cors_explain.verdict({"policy": {"allow_origins": [origin],
                                                             "cross_origin_protection": "enforce"}})
        if accepted == (not go_refuses):
            agree += 1
        else:
            differ.append(origin)
    print(f"\nAddTrustedOrigin validation: {agree} of {len(TRUSTED_ORIGIN_VALIDATION)} agree; "
          f"differences: {differ}")
    assert differ == list(VALIDATION_DIFFERENCES)
