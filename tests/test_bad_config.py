"""Bad plugin configurations are refused at load, naming the field and the problem (issue 6),
and `cors-explain --check` refuses them with the very same message.

For each kind of mistake, over both encodings where the mistake can be written in both (JSON
text in a StringValue, and inline YAML that Envoy hands over as protobuf Struct bytes):
`envoy --mode validate` (which loads the module and runs on_configure) must fail and its log
must carry `invalid plugin configuration: <path>: <problem>`, and `cors-explain --check` on the
same Envoy config file must refuse with the identical message. That equality is what lets the
schema and manifest tests ask cors-explain instead of starting Envoy. Two mistakes are also given
to a real Envoy start, which must exit with the same message instead of serving.
"""

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.harness.envoy import Envoy, catch_all, listener, free_port, validate_file, wasm_filter, with_upstream
from tests.harness.plugin_config import refusal

GOOD = {"allow_origins": ["https://app.example.com"]}

# (id, configuration (dict, or raw JSON text), field path ("" = whole document), problem regex)
MISTAKES = [
    ("malformed-json", '{"policy": {"allow_origins": ["*"]}', "", r"configuration is not valid JSON: EOF while parsing"),
    ("not-an-object", '["https://a.com"]', "", r"must be a JSON object"),
    ("unknown-top-field", {"polcy": GOOD}, "polcy", r"unknown field \(known fields here: policy, "),
    ("unknown-policy-field", {"policy": {"allow_origin": ["https://a.com"]}}, "policy.allow_origin",
     r"unknown field"),
    ("wrong-type-bool", {"policy": {**GOOD, "allow_credentials": "yes"}}, "policy.allow_credentials",
     r"expected true or false, found a string"),
    ("wrong-type-routes", {"routes": ["api"]}, "routes", r"expected a map from name to policy or null, found a list"),
    ("origin-with-path", {"policy": {"allow_origins": ["https://a.com", "app.example.com/path"]}},
     "policy.allow_origins[1]", r'"app.example.com/path" is not an origin'),
    ("origin-trailing-slash", {"policy": {"allow_origins": ["https://app.example.com/"]}},
     "policy.allow_origins[0]", r"trailing '/': an origin has no path"),
    ("origin-user-info", {"policy": {"allow_origins": ["https://user@app.example.com"]}},
     "policy.allow_origins[0]", r"an origin has no user-info"),
    ("origin-bad-wildcard", {"routes": {"api": {"allow_origins": ["https://app.*.com"]}}},
     "routes.api.allow_origins[0]", r"'\*' is only allowed as the whole first label"),
    ("invalid-regex", {"policy": {"allow_origin_string_match": [{"safe_regex": {"google_re2": {}, "regex": "https://(a"}}]}},
     "policy.allow_origin_string_match[0].safe_regex.regex", r"invalid regular expression"),
    ("negative-max-age", {"policy": {**GOOD, "max_age": -1}}, "policy.max_age",
     r"expected whole seconds, such as 600 \(a number or a string of digits\), found -1"),
    ("non-numeric-max-age", {"policy": {**GOOD, "max_age": "ten"}}, "policy.max_age",
     r'expected whole seconds, such as 600 \(a number or a string of digits\), found "ten"'),
    ("fractional-max-age", {"policy": {**GOOD, "max_age": 1.5}}, "policy.max_age",
     r"expected whole seconds, such as 600 \(a number or a string of digits\), found 1.5"),
    ("star-with-credentials", {"policy": {"allow_origins": ["*"], "allow_credentials": True}},
     "policy.allow_credentials", r'true together with an allow-any origin \("\*"\)'),
    ("star-matcher-with-credentials",
     {"virtual_hosts": {"vh": {"allow_origin_string_match": [{"exact": "*"}], "allow_credentials": True}}},
     "virtual_hosts.vh.allow_credentials", r"true together with an allow-any origin"),
    ("route-entry-string", {"routes": {"api": "https://a.com"}}, "routes.api", r"expected an object, found a string"),
    ("vhost-entry-bool", {"virtual_hosts": {"vh": True}}, "virtual_hosts.vh", r"expected an object, found a boolean"),
    ("bad-method-token", {"policy": {**GOOD, "allow_methods": ["GET", "BAD METHOD"]}}, "policy.allow_methods[1]",
     r'"BAD METHOD" is not a valid method or header name'),
    ("star-among-headers", {"policy": {**GOOD, "allow_headers": "x-a, *"}}, "policy.allow_headers",
     r'"\*" must be the only item'),
    ("origins-not-a-list", {"policy": {"allow_origins": "https://a.com"}}, "policy.allow_origins",
     r"expected a list of origins, found a string"),
    ("matcher-two-kinds", {"policy": {"allow_origin_string_match": [{"exact": "a", "prefix": "b"}]}},
     "policy.allow_origin_string_match[0]", r"a string matcher takes only one of exact, prefix"),
    ("matcher-no-kind", {"policy": {"allow_origin_string_match": [{}]}},
     "policy.allow_origin_string_match[0]", r"a string matcher needs one of exact, prefix"),
    ("matcher-empty-prefix", {"policy": {"allow_origin_string_match": [{"prefix": ""}]}},
     "policy.allow_origin_string_match[0]", r"an empty prefix, suffix or contains matches everything"),
    # A matcher no browser's Origin can match: Envoy accepts it and never matches (issue 25.2).
    ("matcher-exact-trailing-slash", {"policy": {"allow_origin_string_match": [{"exact": "https://app.example.com/"}]}},
     "policy.allow_origin_string_match[0].exact",
     r'"https://app.example.com/" never matches an origin \(trailing \'/\': an origin has no path\)'),
    ("matcher-exact-upper-case", {"routes": {"r": {"allow_origin_string_match": [{"exact": "https://App.Example.com"}]}}},
     "routes.r.allow_origin_string_match[0].exact", r"never matches an origin \(upper case without ignore_case"),
    ("matcher-prefix-trailing-slash", {"policy": {"allow_origin_string_match": [{"prefix": "https://app.example.com/"}]}},
     "policy.allow_origin_string_match[0].prefix", r"never matches an origin \(trailing '/'"),
    ("matcher-exact-default-port", {"policy": {"allow_origin_string_match": [{"exact": "https://app.example.com:443"}]}},
     "policy.allow_origin_string_match[0].exact", r'a default port written out: browsers omit it and send "https://app.example.com"'),
    ("bad-stat-prefix", {"stat_prefix": "public..api", "policy": GOOD}, "stat_prefix",
     r'"public..api" is not a counter prefix'),
    ("matcher-regex-missing", {"policy": {"allow_origin_string_match": [{"safe_regex": {"google_re2": {}}}]}},
     "policy.allow_origin_string_match[0].safe_regex.regex", r"missing \(required\)"),
    ("empty-metadata-namespace", {"policy": GOOD, "route_metadata_namespace": ""}, "route_metadata_namespace",
     r"expected a non-empty string or null"),
    ("bad-denominator", {"policy": {**GOOD, "filter_enabled": {"default_value": {"denominator": "PERCENT"}}}},
     "policy.filter_enabled.default_value.denominator", r'expected HUNDRED, TEN_THOUSAND or MILLION, found "PERCENT"'),
    ("negative-numerator", {"policy": {**GOOD, "shadow_enabled": {"default_value": {"numerator": -5}}}},
     "policy.shadow_enabled.default_value.numerator", r"expected a whole number, such as 5"),
    ("any-port-bad-port", {"policy": {"allow_origins": ["http://localhost:*5"]}}, "policy.allow_origins[0]",
     r'"http://localhost:\*5" is not an origin \(bad port\)'),
    ("unknown-preset", {"policy": {**GOOD, "presets": ["grpc-web", "graphql"]}}, "policy.presets[1]",
     r'unknown preset "graphql"'),
    ("unknown-without-origin-mode", {"policy": GOOD, "requests_without_origin": "vary"}, "requests_without_origin",
     r'expected "cache_safe" or "pass", found "vary"'),
    # The Gateway API's vocabulary (HTTPCORSFilter field names).
    ("vocabularies-mixed", {"policy": {"allowOrigins": ["https://a.com"], "allow_methods": "GET"}},
     "policy.allow_methods", r"an Envoy CorsPolicy field in a policy written with the Gateway API's field names"),
    ("gateway-star-with-credentials", {"routes": {"r": {"allowOrigins": ["*"], "allowCredentials": True}}},
     "routes.r.allowCredentials", r'true together with an allow-any origin \("\*"\)'),
    ("gateway-negative-max-age", {"policy": {"allowOrigins": ["*"], "maxAge": -1}}, "policy.maxAge",
     r"expected whole seconds, such as 600"),
    # Istio's vocabulary (VirtualService corsPolicy).
    ("istio-envoy-field-mixed-in", {"policy": {"allowOrigins": [{"exact": "https://a.com"}], "max_age": 60}},
     "policy.max_age", r"an Envoy CorsPolicy field in a policy written with Istio's field names"),
    ("istio-origin-without-scheme", {"routes": {"vs": {"allowOrigins": [{"exact": "cors.com"}]}}},
     "routes.vs.allowOrigins[0].exact", r'"cors.com" never matches an origin'),
    ("istio-bad-regex", {"policy": {"allowOrigins": [{"regex": "https://(a"}]}},
     "policy.allowOrigins[0].regex", r"invalid regular expression"),
    ("istio-max-age-fraction", {"policy": {"allowOrigins": [{"exact": "https://a.com"}], "maxAge": "2.5s"}},
     "policy.maxAge", r'"2.5s": Istio takes whole seconds only; write "2s"'),
    ("istio-max-age-seconds", {"policy": {"allowOrigins": [{"exact": "https://a.com"}], "maxAge": 60}},
     "policy.maxAge", r'expected a duration string such as "24h"'),
    ("istio-unmatched-preflights", {"policy": {"allowOrigin": ["https://a.com"], "unmatchedPreflights": "DROP"}},
     "policy.unmatchedPreflights", r'expected FORWARD or IGNORE, found "DROP"'),
    ("istio-method", {"policy": {"allowOrigin": ["https://a.com"], "allowMethods": ["GET", "PUTT"]}},
     "policy.allowMethods[1]", r'"PUTT" is not a method Istio accepts'),
    # Envoy Gateway's vocabulary (SecurityPolicy cors).
    ("envoy-gateway-max-age-not-a-duration", {"policy": {"allowOrigins": ["https://a.com"], "maxAge": "10 min"}},
     "policy.maxAge", r'"10 min" is not a duration: write a number with a unit'),
    ("envoy-gateway-star-with-credentials",
     {"policy": {"allowOrigins": ["*", "https://a.com"], "allowCredentials": True}},
     "policy.allowCredentials", r"\(Envoy Gateway would echo any origin with credentials"),
    ("envoy-gateway-any-https-origin", {"policy": {"allowOrigins": ["https://*"], "maxAge": "1h"}},
     "policy.allowOrigins[0]", r'"https://\*" is not an origin'),
]

# Inline Struct: every kind of mistake that can be written in YAML, once (the decoder hands the
# same tree to the same checks; the JSON cases cover the variants).
STRUCT_KINDS = ["unknown-policy-field", "wrong-type-bool", "origin-with-path", "invalid-regex", "negative-max-age",
                "non-numeric-max-age", "star-with-credentials", "route-entry-string", "matcher-two-kinds",
                "negative-numerator", "unknown-preset", "gateway-star-with-credentials", "istio-max-age-fraction",
                "envoy-gateway-max-age-not-a-duration"]
CASES = [(m, "json") for m in MISTAKES] + [(m, "struct") for m in MISTAKES if m[0] in STRUCT_KINDS]


def config_for(configuration, encoding):
    return with_upstream([listener("bad", free_port(), [wasm_filter(configuration, encoding)], catch_all("bad"))])


def expected_line(path, problem):
    where = re.escape(path) + ": " if path else ""
    return re.compile(r"invalid plugin configuration: " + where + r"[^\n]*" + problem)


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory, cors_explain):
    """Every case's Envoy config file, validated once by Envoy and checked once by cors-explain
    (a few in parallel: each validation is mostly Envoy start-up)."""
    d = tmp_path_factory.mktemp("bad-config")

    def run(case):
        (name, configuration, _, _), encoding = case
        path = d / f"{name}-{encoding}.json"
        path.write_text(json.dumps(config_for(configuration, encoding)))
        return (name, encoding), (validate_file(path), cors_explain.check_file(path))
    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(run, CASES))


@pytest.mark.parametrize("mistake,encoding", CASES, ids=[f"{m[0]}-{e}" for m, e in CASES])
def test_validate_refuses_the_mistake_and_names_field_and_problem(verdicts, mistake, encoding):
    name, _, path, problem = mistake
    (code, output), _ = verdicts[(name, encoding)]
    assert code != 0, output[-2000:]
    assert expected_line(path, problem).search(output), output[-2000:]
    assert "Unable to create Wasm plugin" in output
    assert "panicked" not in output


@pytest.mark.parametrize("mistake,encoding", CASES, ids=[f"{m[0]}-{e}" for m, e in CASES])
def test_cors_explain_check_refuses_with_the_message_envoy_logs(verdicts, mistake, encoding):
    name = mistake[0]
    (_, output), (accepted, message) = verdicts[(name, encoding)]
    assert not accepted
    assert message == refusal(output), output[-2000:]


def test_a_good_configuration_validates_in_both_encodings(cors_explain, tmp_path):
    """The control: the same harness with a correct policy passes validation, and cors-explain
    accepts it too."""
    for encoding in ("json", "struct"):
        path = tmp_path / f"good-{encoding}.json"
        path.write_text(json.dumps(config_for({"policy": {**GOOD, "max_age": 600, "allow_credentials": True}},
                                              encoding)))
        code, output = validate_file(path)
        assert code == 0, output[-2000:]
        assert "invalid plugin configuration" not in output
        assert cors_explain.check_file(path) == (True, "")


@pytest.mark.parametrize("name,encoding", [("star-with-credentials", "struct"), ("invalid-regex", "json")])
def test_envoy_does_not_start_with_a_refused_configuration(name, encoding):
    _, configuration, path, problem = next(m for m in MISTAKES if m[0] == name)
    with pytest.raises(RuntimeError) as refused:
        envoy = Envoy(config_for(configuration, encoding))
        envoy.stop()  # only reached if it (wrongly) started
    message = str(refused.value)
    assert "Envoy exited" in message, message[-2000:]
    assert expected_line(path, problem).search(message), message[-2000:]


def test_numbers_are_read_as_inline_yaml_delivers_them(cors_explain, tmp_path):
    """Inline YAML, as an operator writes it: Envoy turns a YAML number with a fraction into a
    string in the Struct it hands over, so `600.0` and `5.0` load as 600 and 5, while `1.5`
    seconds is refused with a message saying what to write."""
    import yaml
    good = {"policy": {**GOOD, "max_age": 600.0,
                       "filter_enabled": {"default_value": {"numerator": 100.0, "denominator": "HUNDRED"}}},
            "routes": {"bad": {"allowOrigins": ["https://a.com"], "maxAge": 60.0}}}
    path = tmp_path / "good.yaml"
    path.write_text(yaml.safe_dump(config_for(good, "struct")))
    assert "600.0" in path.read_text()
    code, output = validate_file(path)
    assert code == 0, output[-2000:]
    assert cors_explain.check_file(path) == (True, "")
    path = tmp_path / "fraction.yaml"
    path.write_text(yaml.safe_dump(config_for({"policy": {**GOOD, "max_age": 1.5}}, "struct")))
    code, output = validate_file(path)
    assert code != 0
    assert expected_line("policy.max_age", r"expected whole seconds, such as 600").search(output), output[-2000:]
