"""The Gateway API conformance test `HTTPRouteCORS`, replayed through our filter in a real Envoy.

Its five HTTPRoute rules (tests/harness/gateway_api_cors_cases.py, transcribed from
kubernetes-sigs/gateway-api conformance/tests/httproute-cors.yaml) become one Envoy route each,
matched as Gateway API matches `PathPrefix` (`path_separated_prefix`: `/cors-1` matches
`/cors-1/x`, not `/cors-10`), and each rule's `cors` block is pasted, as written, into the plugin
configuration's `routes` map under that route's name. The 17 cases (httproute-cors.go) are sent
to it and judged as the Go test judges them (conformance/utils/http/http.go, `CompareRoundTrip`).

The one documented difference (docs/migrating-from-envoy-cors.md, intentional differences): a rule
with `allowOrigins: ["*"]` and `allowCredentials: true` is refused at load, because the Gateway API
answers it by echoing every origin with credentials. That rule is asserted to be refused, and its cases are listed in
`INTENTIONAL_DIFFERENCES` instead of replayed; every other case must agree.

The conformance backend is an echo server that answers with the request it saw (path, method,
namespace) as JSON; ours (tests/harness/envoy.py `upstream_listener`) marks its answers with
`x-upstream: hit`, and `echoed_request` turns that into what the echo server would have told the
Go test. That is how the Go test sees whether a preflight reached the backend: a preflight
answered by the backend carries its path, which fails the case's expected empty path.
"""

import pytest

from tests.harness import envoy
from tests.harness.gateway_api_cors_cases import CASES, INFRA_NAMESPACE, RULES

# The rules refused at load by design: `*` with credentials (HTTPRoute, rule index).
REFUSED_RULES = {("cors-wildcard-methods-headers", 0)}

# The cases that go to a refused rule, so are not replayed: the documented difference.
INTENTIONAL_DIFFERENCES = {
    # "...should be allowed and always echo the origin with allowCredentials set to true"
    "14-preflight-any-origin-with-credentials",
    # "CORS request should receive access-control-allow-credentials header with allowCredentials set to true"
    "16-get-any-origin-with-credentials",
}


def route_name(rule):
    return f"httproute/{INFRA_NAMESPACE}/{rule.httproute}/rule/{rule.index}"


def refused(rule):
    return (rule.httproute, rule.index) in REFUSED_RULES


def plugin_configuration(rules):
    """Our plugin configuration for these rules: each rule's `cors` block as its route's policy."""
    return {"routes": {route_name(rule): rule.cors for rule in rules}}


def rule_for(path):
    """The rule Gateway API routes `path` to: the longest `PathPrefix` that matches it whole
    path segments at a time."""
    matching = [r for r in RULES if path == r.path_prefix or path.startswith(r.path_prefix + "/")]
    return max(matching, key=lambda r: len(r.path_prefix))


ACCEPTED_RULES = [r for r in RULES if not refused(r)]
REPLAYED = [c for c in CASES if c.id not in INTENTIONAL_DIFFERENCES]


@pytest.fixture(scope="module")
def gateway():
    yield from envoy.conformance_gateway([(route_name(r), r.path_prefix) for r in ACCEPTED_RULES],
                                         plugin_configuration(ACCEPTED_RULES))


def test_the_transcription_has_every_case_and_rule():
    assert len(CASES) == 17 and len({c.id for c in CASES}) == 17 and len({c.name for c in CASES}) == 17
    assert len(RULES) == 5
    assert {(rule_for(c.request_path).httproute, rule_for(c.request_path).index) for c in CASES} == {
        (r.httproute, r.index) for r in RULES}


def test_the_intentional_differences_are_the_cases_of_the_refused_rule():
    assert {c.id for c in CASES if refused(rule_for(c.request_path))} == INTENTIONAL_DIFFERENCES


@pytest.mark.parametrize("rule", RULES, ids=route_name)
def test_only_any_origin_with_credentials_is_refused_at_load(cors_explain, rule):
    accepted, message = cors_explain.verdict(plugin_configuration([rule]))
    if refused(rule):
        assert rule.cors["allowOrigins"] == ["*"] and rule.cors["allowCredentials"] is True
        assert not accepted
        assert message.startswith(f"routes.{route_name(rule)}.allowCredentials:"), message
    else:
        assert accepted, message


def test_the_pasted_routes_as_a_whole_are_refused_naming_the_rule(cors_explain):
    """A user pasting all five rules gets one refusal, and it names the refused rule."""
    accepted, message = cors_explain.verdict(plugin_configuration(RULES))
    (refused_rule,) = [r for r in RULES if refused(r)]
    assert not accepted
    assert message.startswith(f"routes.{route_name(refused_rule)}.allowCredentials:"), message


def echoed_request(case, headers):
    """What the Go test captures as the request the backend saw (conformance/utils/roundtripper,
    `defaultRoundTrip`): the echo server's JSON when it answered; otherwise an empty path and
    namespace, and the method assumed to be the one sent."""
    if ("x-upstream", "hit") in headers:
        return {"path": case.request_path, "method": case.request_method, "namespace": INFRA_NAMESPACE}
    return {"path": "", "method": case.request_method, "namespace": ""}


def compare_round_trip(case, status, headers):
    """The Go test's `CompareRoundTrip` for this case: every complaint it would make (it stops
    at the first; all are listed here). Header values are compared as the Go test compares
    them: all field lines joined with ",", spaces removed on both sides when the case says
    `IgnoreWhitespace`, then equal to `Headers[name]` or to one of `ValidHeaderValues[name]`."""
    if status not in case.status_codes:
        return [f"status {status}, expected one of {list(case.status_codes)}"]
    if status not in (200, 204):
        return []
    complaints = []
    expected = case.expected_request or {"path": case.request_path, "method": case.request_method}
    seen = echoed_request(case, headers)
    if expected["path"] != seen["path"]:
        complaints.append(f"backend saw path {seen['path']!r}, expected {expected['path']!r}"
                          + (" (the request reached the backend)" if seen["path"] else ""))
    if (expected["method"] or "GET") != seen["method"]:
        complaints.append(f"backend saw method {seen['method']!r}, expected {expected['method']!r}")
    if case.namespace != seen["namespace"]:
        complaints.append(f"backend namespace {seen['namespace']!r}, expected {case.namespace!r}")

    def joined(name):
        values = envoy.header_values(headers, name.lower())
        return ",".join(values) if values else None

    def squeezed(value):
        return value.replace(" ", "") if case.ignore_whitespace else value

    for name, valid in case.valid_header_values.items():
        actual = joined(name)
        if actual is None:
            complaints.append(f"{name} missing, expected one of {valid}")
        elif squeezed(actual) not in [squeezed(v) for v in valid]:
            complaints.append(f"{name}: {actual!r}, expected one of {valid}")
    for name, value in case.headers.items():
        actual = joined(name)
        if actual is None or squeezed(actual) != squeezed(value):
            complaints.append(f"{name}: {actual!r}, expected {value!r}")
    for name in case.absent_headers:
        if joined(name) is not None:
            complaints.append(f"{name}: {joined(name)!r}, expected absent")
    return complaints


@pytest.mark.parametrize("case", REPLAYED, ids=lambda c: c.id)
def test_conformance_case_agrees(gateway, case):
    client, port = gateway
    # `MakeRequest` always adds X-Echo-Set-Header (empty here: no BackendSetResponseHeaders), and
    # sends Host as the gateway's address.
    status, headers = client.send(port, case.request_method, case.request_path,
                                  case.request_headers + (("X-Echo-Set-Header", ""),),
                                  host=f"127.0.0.1:{port}")
    assert compare_round_trip(case, status, headers) == [], f"{case.name}\n{status} {headers}"
