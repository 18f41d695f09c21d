"""schema/plugin-config.schema.json is kept in step with the filter's parser: the same field names
at every level, every example accepted by both, every broken example refused by both. The parser
is asked through `cors-explain --check` (tests/harness/plugin_config.py says why that is the filter's
verdict)."""

import jsonschema
import pytest

from tests.harness.plugin_config import schema, schema_errors

VALID = {
    "one-origin": {"policy": {"allow_origins": ["https://app.example.com"]}},
    "empty": {},
    "envoy-corspolicy-fields": {"policy": {
        "allow_origin_string_match": [
            {"exact": "https://app.example.com"},
            {"suffix": ".corp.example", "ignore_case": True},
            {"safe_regex": {"google_re2": {}, "regex": "https://[a-z0-9-]+\\.preview\\.example\\.com"}},
        ],
        "allow_methods": "GET, POST, PUT",
        "allow_headers": "authorization, content-type",
        "expose_headers": "x-request-id",
        "max_age": "600",
        "allow_credentials": True,
        "allow_private_network_access": True,
        "forward_not_matching_preflights": False,
        "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
        "shadow_enabled": {"runtime_key": "cors.shadow", "default_value": {"numerator": 0}},
    }},
    "lists-and-debug": {"policy": {
        "allow_origins": ["https://*.example.com", "http://localhost:8080", "http://[::1]:8080", "null"],
        "allow_methods": ["GET", "POST"], "allow_headers": ["*"], "expose_headers": ["x-a", "x-b"],
        "max_age": 86400, "allow_credentials": True, "debug_reason_header": True,
        "filter_enabled": {"default_value": {"numerator": 5000, "denominator": "TEN_THOUSAND"}},
    }},
    "per-route-and-vhost": {
        "policy": {"allow_origins": ["https://app.example.com"]},
        "virtual_hosts": {"admin.example.com:80": {"allow_origins": ["https://admin.example.com"]},
                          "internal:80": None},
        "routes": {"health": None, "public-api": {"allow_origins": ["*"], "expose_headers": "*"}},
        "route_metadata_namespace": None,
    },
    "nulls-are-absent": {"policy": None, "routes": None, "virtual_hosts": None,
                         "route_metadata_namespace": "example.cors"},
    "gateway-api-vocabulary": {"routes": {
        "cors-1": {"allowOrigins": ["https://www.foo.com", "https://*.bar.com"],
                   "allowMethods": ["GET", "OPTIONS"], "allowHeaders": ["x-header-1", "x-header-2"],
                   "exposeHeaders": ["x-header-3"], "maxAge": 3600, "allowCredentials": True},
        "cors-wildcard": {"allowOrigins": ["*"], "allowMethods": ["*"], "allowHeaders": ["*"]},
    }, "requests_without_origin": "pass"},
    "any-port": {"policy": {"allow_origins": ["http://localhost:*", "https://*.dev.example:*"]}},
    "presets": {"policy": {"allow_origins": ["https://app.example"], "presets": ["grpc-web", "connect", "mcp"]},
                "routes": {"g": {"allowOrigins": ["https://app.example"], "presets": ["grpc-web"]}}},
    "cross-origin-protection": {"policy": {"allow_origins": ["https://app.example"], "cross_origin_protection": "enforce"},
                                "routes": {"g": {"allowOrigins": ["https://app.example"], "crossOriginProtection": "report"},
                                           "o": {"allow_origins": ["*"], "cross_origin_protection": "off"},
                                           "n": {"allow_origins": ["*"], "cross_origin_protection": None}}},
    "stat-prefix": {"stat_prefix": "public-api.v1", "policy": {"allow_origins": ["https://a.example"]}},
    "istio-vocabulary": {"routes": {
        # istio/istio tests/integration/pilot/common/routing.go "cors", origin written as one.
        "vs": {"allowOrigins": [{"exact": "http://cors.com"}, {"prefix": "https://app."},
                                {"regex": "https://[a-z]+\\.example\\.com"}],
               "allowMethods": ["POST", "GET"], "allowCredentials": False,
               "allowHeaders": ["X-Foo-Bar", "X-Foo-Baz"], "maxAge": "24h"},
        "deprecated": {"allowOrigin": ["https://a.example"], "unmatchedPreflights": "IGNORE",
                       "exposeHeaders": ["x-a"], "maxAge": "1m30s", "presets": ["grpc-web"]},
    }},
    "envoy-gateway-vocabulary": {"routes": {
        # envoyproxy/gateway test/e2e/testdata/cors-security-policy.yaml
        "cors-exact": {"allowOrigins": ["https://www.foo.com", "https://www.bar.com", "https://*.foobar.com"],
                       "allowMethods": ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                       "allowHeaders": ["x-header-1", "x-header-2"], "exposeHeaders": ["x-header-3", "x-header-4"]},
        "timed": {"allowOrigins": ["https://a.example:*"], "maxAge": "1.5h", "allowCredentials": True},
        "star-among-others": {"allowOrigins": ["*", "https://a.example"], "allowMethods": ["GET", "*"]},
    }},
    "numbers-as-inline-yaml-delivers-them": {"policy": {
        "allow_origins": ["https://a.example"], "max_age": "600.0",
        "filter_enabled": {"default_value": {"numerator": "5.0"}},
    }, "routes": {"g": {"allowOrigins": ["https://a.example"], "maxAge": "60.0"}}},
    "numeric-enum-and-float-integers": {"policy": {
        "allow_origins": ["https://a.example"], "max_age": 600.0,
        "shadow_enabled": {"default_value": {"numerator": 1.0, "denominator": 2}},
    }},
}

# name: (configuration, the field path the parser's refusal names)
INVALID = {
    "unknown-top-level-field": ({"polcy": {}}, "polcy"),
    "unknown-policy-field": ({"policy": {"allow_origin": ["*"]}}, "policy.allow_origin"),
    "origins-not-a-list": ({"policy": {"allow_origins": "https://a.com"}}, "policy.allow_origins"),
    "origin-with-path": ({"policy": {"allow_origins": ["https://a.com/"]}}, "policy.allow_origins[0]"),
    "origin-without-scheme": ({"routes": {"api": {"allow_origins": ["app.example.com"]}}},
                              "routes.api.allow_origins[0]"),
    "wildcard-inside-host": ({"policy": {"allow_origins": ["https://a.*.com"]}}, "policy.allow_origins[0]"),
    "negative-max-age": ({"policy": {"max_age": -1}}, "policy.max_age"),
    "max-age-words": ({"policy": {"max_age": "ten"}}, "policy.max_age"),
    "max-age-fraction": ({"policy": {"max_age": 1.5}}, "policy.max_age"),
    "credentials-not-bool": ({"policy": {"allow_credentials": "yes"}}, "policy.allow_credentials"),
    "credentials-with-any-origin": ({"policy": {"allow_origins": ["*"], "allow_credentials": True}},
                                    "policy.allow_credentials"),
    "credentials-with-exact-star": ({"virtual_hosts": {"v": {
        "allow_origin_string_match": [{"exact": "*"}], "allow_credentials": True}}},
        "virtual_hosts.v.allow_credentials"),
    "matcher-two-kinds": ({"policy": {"allow_origin_string_match": [{"exact": "a", "prefix": "b"}]}},
                          "policy.allow_origin_string_match[0]"),
    "matcher-no-kind": ({"policy": {"allow_origin_string_match": [{}]}}, "policy.allow_origin_string_match[0]"),
    "matcher-empty-prefix": ({"policy": {"allow_origin_string_match": [{"prefix": ""}]}},
                             "policy.allow_origin_string_match[0]"),
    "matcher-regex-missing": ({"policy": {"allow_origin_string_match": [{"safe_regex": {"google_re2": {}}}]}},
                              "policy.allow_origin_string_match[0].safe_regex.regex"),
    "routes-a-list": ({"routes": []}, "routes"),
    "route-entry-a-string": ({"routes": {"api": "https://a.com"}}, "routes.api"),
    "empty-metadata-namespace": ({"route_metadata_namespace": ""}, "route_metadata_namespace"),
    "methods-without-comma": ({"policy": {"allow_methods": "GET POST"}}, "policy.allow_methods"),
    "star-not-alone": ({"policy": {"allow_headers": ["*", "x-a"]}}, "policy.allow_headers"),
    "bad-denominator": ({"policy": {"filter_enabled": {"default_value": {"denominator": "PERCENT"}}}},
                        "policy.filter_enabled.default_value.denominator"),
    "negative-numerator": ({"policy": {"filter_enabled": {"default_value": {"numerator": -5}}}},
                           "policy.filter_enabled.default_value.numerator"),
    "not-an-object": ([{"policy": {}}], ""),
    "vocabularies-mixed": ({"policy": {"allowOrigins": ["https://a.com"], "allow_methods": "GET"}},
                           "policy.allow_methods"),
    "max-age-fraction-as-yaml-string": ({"policy": {"max_age": "1.5"}}, "policy.max_age"),
    "numerator-fraction": ({"policy": {"filter_enabled": {"default_value": {"numerator": "2.5"}}}},
                           "policy.filter_enabled.default_value.numerator"),
    "star-among-others-is-envoy-gateway-whose-max-age-is-a-duration": (
        {"policy": {"allowOrigins": ["*", "https://a.com"], "maxAge": 60}}, "policy.maxAge"),
    "istio-origin-a-string": ({"policy": {"allowOrigins": [{"exact": "https://a.com"}, "https://b.com"]}},
                              "policy.allowOrigins[1]"),
    "istio-origin-two-kinds": ({"policy": {"allowOrigins": [{"exact": "https://a.com", "prefix": "https://b"}]}},
                               "policy.allowOrigins[0]"),
    "istio-origin-empty": ({"policy": {"allowOrigins": [{"exact": ""}]}}, "policy.allowOrigins[0].exact"),
    "istio-origin-suffix": ({"policy": {"allowOrigins": [{"suffix": ".a.com"}]}}, "policy.allowOrigins[0].suffix"),
    "istio-max-age-seconds": ({"policy": {"unmatchedPreflights": "FORWARD", "maxAge": 86400}}, "policy.maxAge"),
    "istio-max-age-not-a-duration": ({"policy": {"unmatchedPreflights": "FORWARD", "maxAge": "1d"}}, "policy.maxAge"),
    "istio-unknown-unmatched-preflights": ({"policy": {"unmatchedPreflights": "DROP"}}, "policy.unmatchedPreflights"),
    "istio-method": ({"policy": {"allowOrigin": ["https://a.com"], "allowMethods": ["GET", "PUTT"]}},
                     "policy.allowMethods[1]"),
    "istio-star-with-credentials": ({"routes": {"r": {"allowOrigins": [{"exact": "*"}], "allowCredentials": True}}},
                                    "routes.r.allowCredentials"),
    "istio-envoy-field-mixed-in": ({"policy": {"allowOrigins": [{"exact": "https://a.com"}], "max_age": 5}},
                                   "policy.max_age"),
    "envoy-gateway-max-age-not-a-duration": ({"policy": {"allowOrigins": ["https://a.com"], "maxAge": "10 minutes"}},
                                             "policy.maxAge"),
    "envoy-gateway-star-with-credentials": ({"policy": {"allowOrigins": ["*"], "maxAge": "1h", "allowCredentials": True}},
                                            "policy.allowCredentials"),
    "envoy-gateway-origin-wildcard-inside": ({"policy": {"allowOrigins": ["https://a.*.com"], "maxAge": "1h"}},
                                             "policy.allowOrigins[0]"),
    "gateway-star-with-credentials": ({"routes": {"r": {"allowOrigins": ["*"], "allowCredentials": True}}},
                                      "routes.r.allowCredentials"),
    "gateway-negative-max-age": ({"policy": {"allowOrigins": ["*"], "maxAge": -1}}, "policy.maxAge"),
    "unknown-preset": ({"policy": {"presets": ["grpc-web", "graphql"]}}, "policy.presets[1]"),
    "unknown-without-origin-mode": ({"requests_without_origin": "vary"}, "requests_without_origin"),
    "stat-prefix-empty-part": ({"stat_prefix": "public..api"}, "stat_prefix"),
    "stat-prefix-a-number": ({"stat_prefix": 7}, "stat_prefix"),
    "unknown-cross-origin-protection": ({"policy": {"cross_origin_protection": "on"}},
                                        "policy.cross_origin_protection"),
    "cross-origin-protection-a-bool": ({"routes": {"r": {"allowOrigins": ["*"], "crossOriginProtection": True}}},
                                       "routes.r.crossOriginProtection"),
    "cross-origin-protection-other-vocabulary": (
        {"policy": {"allowOrigins": ["*"], "cross_origin_protection": "enforce"}}, "policy.cross_origin_protection"),
}


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(schema())


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_example_passes_schema_and_parser(cors_explain, name):
    config = VALID[name]
    assert schema_errors(config) == [], name
    accepted, message = cors_explain.verdict(config)
    assert accepted, f"{name}: parser refused: {message}"


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_example_is_refused_by_schema_and_parser(cors_explain, name):
    config, path = INVALID[name]
    assert schema_errors(config), f"{name}: the schema accepts it"
    accepted, message = cors_explain.verdict(config)
    assert not accepted, f"{name}: the parser accepts it"
    if path:
        assert message.startswith(path + ":"), f"{name}: {message}"
    else:
        assert "must be a JSON object" in message


def _props(node):
    return set(node["properties"])


def test_field_names_match_the_parser_at_every_level(cors_explain):
    """Each object of the configuration: the names the schema lists = the names the parser knows
    (the parser lists them when it refuses an unknown field)."""
    s = schema()
    d = s["$defs"]
    matcher = {"policy": {"allow_origin_string_match": [{"zz_unknown": 1}]}}
    regex = {"policy": {"allow_origin_string_match": [{"safe_regex": {"regex": "a", "zz_unknown": 1}}]}}
    levels = [
        ("top level", _props(s), {"zz_unknown": 1}),
        ("policy", _props(d["envoyPolicy"]), {"policy": {"zz_unknown": 1}}),
        ("policy in routes", _props(d["envoyPolicy"]), {"routes": {"r": {"zz_unknown": 1}}}),
        ("Gateway API policy", _props(d["gatewayApiPolicy"]), {"policy": {"allowOrigins": ["*"], "zz_unknown": 1}}),
        ("Istio policy", _props(d["istioPolicy"]), {"policy": {"unmatchedPreflights": "IGNORE", "zz_unknown": 1}}),
        ("Istio StringMatch", _props(d["istioStringMatch"]), {"policy": {"allowOrigins": [{"zz_unknown": 1}]}}),
        ("Envoy Gateway policy", _props(d["envoyGatewayPolicy"]),
         {"policy": {"allowOrigins": ["*"], "maxAge": "1h", "zz_unknown": 1}}),
        ("string matcher", _props(d["stringMatcher"]), matcher),
        ("safe_regex", _props(d["stringMatcher"]["properties"]["safe_regex"]), regex),
        ("fractional percent", _props(d["runtimeFraction"]), {"policy": {"filter_enabled": {"zz_unknown": 1}}}),
        ("default_value", _props(d["runtimeFraction"]["properties"]["default_value"]),
         {"policy": {"shadow_enabled": {"default_value": {"zz_unknown": 1}}}}),
    ]
    for level, in_schema, probe in levels:
        assert in_schema == cors_explain.known_fields(probe), level


def test_every_object_in_the_schema_refuses_unknown_fields():
    """additionalProperties: false everywhere the parser refuses unknown keys (maps excepted)."""
    def walk(node, where):
        if isinstance(node, dict):
            types = node.get("type", [])
            if "properties" in node and "object" in ([types] if isinstance(types, str) else types):
                assert node.get("additionalProperties") is False, where
            for k, v in node.items():
                if k not in ("if", "not", "contains"):  # conditions, not declarations
                    walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")
    walk(schema(), "#")

