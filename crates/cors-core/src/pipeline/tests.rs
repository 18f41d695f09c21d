//! The pipeline against a counting fake host: what it decides, and how many host calls each
//! path makes. A change that adds a host call to a path fails here.

use super::*;
use crate::structpb::encode::encode_metadata;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};

/// A request as a host would see it; records every host call the pipeline makes.
#[derive(Default)]
struct CountingHost {
    origin: Option<&'static str>,
    headers: Vec<(&'static str, &'static str)>,
    route: Option<&'static str>,
    vhost: Option<&'static str>,
    metadata: Option<Vec<u8>>,
    route_config: Option<RouteConfig>,
    random: u32,
    wants_reason: bool,
    calls: RefCell<Vec<&'static str>>,
    headers_read: Cell<bool>,
}

impl CountingHost {
    fn call(&self, name: &'static str) {
        self.calls.borrow_mut().push(name);
    }
}

impl HostView for CountingHost {
    fn request_header(&self, name: &str) -> Option<&[u8]> {
        // As the Wasm host: the first lookup reads the whole header map in one call.
        if !self.headers_read.replace(true) {
            self.call("request_headers");
        }
        if name == "origin" {
            return self.origin.map(str::as_bytes);
        }
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_bytes())
    }
    fn route_name(&self) -> Option<Vec<u8>> {
        self.call("route_name");
        self.route.map(|r| r.as_bytes().to_vec())
    }
    fn virtual_host_name(&self) -> Option<Vec<u8>> {
        self.call("virtual_host_name");
        self.vhost.map(|v| v.as_bytes().to_vec())
    }
    fn route_metadata(&self) -> Option<Vec<u8>> {
        self.call("route_metadata");
        self.metadata.clone()
    }
    fn route_config(&self) -> Option<&RouteConfig> {
        // A host without per-route configuration (Wasm) makes no call here.
        let config = self.route_config.as_ref()?;
        self.call("route_config");
        Some(config)
    }
    fn random(&self) -> u32 {
        self.random
    }
    fn wants_reason(&self) -> bool {
        self.wants_reason
    }
}

/// A configuration with its own route-metadata cache, as a host keeps them.
struct Plan {
    config: Config,
    metadata: MetadataCache,
}

fn plan(config: Value) -> Plan {
    Plan {
        config: Config::from_value(&config).unwrap(),
        metadata: MetadataCache::default(),
    }
}

fn run<R>(plan: &Plan, host: &CountingHost, act: impl for<'o> FnOnce(Outcome<'o>) -> R) -> R {
    on_request(&plan.config, &plan.metadata, host, act)
}

fn preflight(origin: &'static str) -> CountingHost {
    CountingHost {
        origin: Some(origin),
        headers: vec![
            (":method", "OPTIONS"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "content-type"),
        ],
        ..Default::default()
    }
}

fn actual(origin: &'static str) -> CountingHost {
    CountingHost {
        origin: Some(origin),
        headers: vec![(":method", "GET")],
        ..Default::default()
    }
}

fn no_origin() -> CountingHost {
    CountingHost {
        headers: vec![(":method", "GET")],
        ..Default::default()
    }
}

/// What a host does with an outcome, in host calls: the view's calls, then one for a reply,
/// or (response phase) one read of the response headers and one per edit.
fn host_calls(plan: &Plan, host: &CountingHost) -> (Vec<&'static str>, usize) {
    let acting = run(plan, host, |outcome| match &outcome.action {
        Action::Pass => 0,
        Action::Reply { .. } => 1,
        Action::Forward(forward) => {
            let existing: [(&[u8], &[u8]); 0] = [];
            1 + forward.response_edits(&existing).len()
        }
    });
    let calls = host.calls.borrow().clone();
    let total = calls.len() + acting;
    (calls, total)
}

fn summary(plan: &Plan, host: &CountingHost) -> (String, Option<usize>, Option<&'static str>) {
    run(plan, host, |o| {
        let step = match &o.action {
            Action::Pass => "pass".to_owned(),
            Action::Reply { status, .. } => format!("reply {status}"),
            Action::Forward(f) => format!("forward {:?}", f.grant),
        };
        (
            step,
            o.verdict.as_ref().map(|v| v.counter),
            o.verdict.and_then(|v| v.refusal).map(Refusal::class),
        )
    })
}

const ALLOW_A: fn() -> Value = || json!({"policy": {"allow_origins": ["https://a.com"], "allow_methods": "PUT", "allow_headers": "content-type"}});

/// A configuration with route-metadata lookups on.
fn with_metadata(mut config: Value) -> Value {
    config["route_metadata_namespace"] = json!("cors");
    config
}

#[test]
fn a_non_cacheable_request_without_origin_costs_one_host_call_and_passes() {
    let plan = plan(ALLOW_A());
    for method in ["POST", "PUT", "OPTIONS"] {
        let host = CountingHost {
            headers: vec![(":method", method)],
            ..Default::default()
        };
        assert_eq!(host_calls(&plan, &host), (vec!["request_headers"], 1));
        assert_eq!(summary(&plan, &host).0, "pass");
    }
}

#[test]
fn a_cacheable_response_without_origin_gets_vary_origin_in_three_host_calls() {
    let plan = plan(ALLOW_A());
    for method in ["GET", "HEAD"] {
        let host = CountingHost {
            headers: vec![(":method", method)],
            ..Default::default()
        };
        // The request read, then the response read and the `Vary` edit.
        assert_eq!(host_calls(&plan, &host), (vec!["request_headers"], 3));
        let edits = run(&plan, &no_origin(), |o| match o.action {
            Action::Forward(f) => format!("{:?}", f.response_edits::<&[u8], &[u8]>(&[])),
            other => format!("{other:?}"),
        });
        assert_eq!(edits, r#"[("vary", Some([79, 114, 105, 103, 105, 110]))]"#);
        assert!(
            run(&plan, &no_origin(), |o| o.verdict.is_none()),
            "no counter"
        );
    }
}

#[test]
fn a_policy_allowing_any_origin_without_credentials_answers_every_cacheable_response() {
    let plan = plan(json!({"policy": {"allow_origins": ["*"], "expose_headers": "x-total"}}));
    let edits = run(&plan, &no_origin(), |o| match o.action {
        Action::Forward(f) => f
            .response_edits::<&[u8], &[u8]>(&[])
            .into_iter()
            .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(&v.unwrap_or_default())))
            .collect::<Vec<_>>(),
        _ => Vec::new(),
    });
    assert_eq!(
        edits,
        [
            "access-control-allow-origin: *",
            "access-control-expose-headers: x-total"
        ]
    );
}

#[test]
fn requests_without_origin_pass_untouched_when_no_shared_cache_is_declared() {
    let mut config = ALLOW_A();
    config["requests_without_origin"] = json!("pass");
    let plan = plan(config);
    assert_eq!(
        host_calls(&plan, &no_origin()),
        (vec!["request_headers"], 1)
    );
    // Nor does a request without a policy, or with CORS off there.
    let plan = self::plan(json!({"routes": {"api": null}}));
    let host = CountingHost {
        route: Some("api"),
        ..no_origin()
    };
    assert_eq!(summary(&plan, &host).0, "pass");
}

#[test]
fn an_allowed_preflight_costs_two_host_calls() {
    let plan = plan(ALLOW_A());
    let (calls, total) = host_calls(&plan, &preflight("https://a.com"));
    assert_eq!(calls, ["request_headers"]);
    assert_eq!(total, 2, "one read and the reply");
    assert_eq!(summary(&plan, &preflight("https://a.com")).0, "reply 200");
}

#[test]
fn an_allowed_actual_request_costs_at_most_eight_host_calls() {
    let plan = plan(ALLOW_A());
    let (calls, total) = host_calls(&plan, &actual("https://a.com"));
    assert_eq!(calls, ["request_headers"]);
    // Response phase: one read, then ACAO and Vary.
    assert_eq!(total, 4);
}

#[test]
fn route_metadata_lookups_cost_one_host_call_and_only_when_configured() {
    let plan = plan(with_metadata(ALLOW_A()));
    let (calls, total) = host_calls(&plan, &preflight("https://a.com"));
    assert_eq!(calls, ["request_headers", "route_metadata"]);
    assert_eq!(total, 3);
}

#[test]
fn route_and_virtual_host_names_are_read_only_when_the_config_keys_on_them() {
    let plan = plan(json!({
        "routes": {"api": {"allow_origins": ["https://a.com"]}},
        "virtual_hosts": {"vh": {"allow_origins": ["https://b.com"]}},
        "route_metadata_namespace": null,
    }));
    let host = CountingHost {
        route: Some("api"),
        vhost: Some("vh"),
        ..actual("https://a.com")
    };
    assert_eq!(
        host_calls(&plan, &host).0,
        ["request_headers", "route_name", "virtual_host_name"]
    );
    let host = CountingHost {
        route: Some("other"),
        vhost: Some("vh"),
        ..actual("https://b.com")
    };
    assert_eq!(
        summary(&plan, &host).0,
        "forward Allow { echo_origin: true }"
    );
}

#[test]
fn selection_order_is_metadata_then_routes_then_virtual_hosts_then_policy() {
    let plan = plan(json!({
        "policy": {"allow_origins": ["https://default.com"]},
        "routes": {"api": {"allow_origins": ["https://route.com"]}, "off": null},
        "virtual_hosts": {"vh": {"allow_origins": ["https://vh.com"]}},
        "route_metadata_namespace": "cors",
    }));
    let source = |host: CountingHost| {
        run(&plan, &host, |o| match o.selected {
            Selected::Policy(p, s) => format!("{} {s:?}", p.name),
            other => format!("{other:?}"),
        })
    };
    let meta = encode_metadata("cors", &json!({"allow_origins": ["https://meta.com"]}));
    let at = |route, vhost, metadata: Option<Vec<u8>>| CountingHost {
        route,
        vhost,
        metadata,
        ..actual("https://x.com")
    };
    assert_eq!(
        source(at(Some("api"), Some("vh"), Some(meta))),
        "route metadata filter_metadata.cors RouteMetadata(\"cors\")"
    );
    assert_eq!(
        source(at(Some("api"), Some("vh"), None)),
        "routes.api Route(\"api\")"
    );
    assert_eq!(
        source(at(Some("off"), Some("vh"), None)),
        "Off(Route(\"off\"))"
    );
    assert_eq!(
        source(at(Some("x"), Some("vh"), None)),
        "virtual_hosts.vh VirtualHost(\"vh\")"
    );
    assert_eq!(source(at(None, None, None)), "policy Default");
    let post = CountingHost {
        headers: vec![(":method", "POST")],
        ..Default::default()
    };
    assert_eq!(
        source(post),
        "NotCors",
        "nothing is selected for a POST without Origin"
    );
}

#[test]
fn a_route_metadata_policy_is_decoded_once_and_skips_the_name_lookups() {
    let plan = plan(json!({"routes": {"api": null}, "route_metadata_namespace": "cors"}));
    let meta = encode_metadata("cors", &json!({"allow_origins": ["https://a.com"]}));
    for _ in 0..2 {
        let host = CountingHost {
            metadata: Some(meta.clone()),
            route: Some("api"),
            ..actual("https://a.com")
        };
        assert_eq!(
            host_calls(&plan, &host).0,
            ["request_headers", "route_metadata"]
        );
    }
}

#[test]
fn an_invalid_route_metadata_policy_turns_cors_off_and_is_logged_once() {
    let plan =
        plan(json!({"policy": {"allow_origins": ["*"]}, "route_metadata_namespace": "cors"}));
    let meta = encode_metadata("cors", &json!({"allow_origins": ["not an origin"]}));
    let run = || {
        let host = CountingHost {
            metadata: Some(meta.clone()),
            route: Some("broken"),
            ..actual("https://a.com")
        };
        let logs = run(&plan, &host, |o| {
            assert!(matches!(o.selected, Selected::Invalid(_)));
            assert!(matches!(o.action, Action::Pass));
            o.logs
        });
        let calls = host.calls.borrow().clone();
        (logs, calls)
    };
    let (logs, calls) = run();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].0, LogLevel::Error);
    assert!(
        logs[0].1.contains("allow_origins[0]")
            && logs[0].1.ends_with("(first seen on route \"broken\")"),
        "{logs:?}"
    );
    assert_eq!(calls, ["request_headers", "route_metadata", "route_name"]);
    let (logs, calls) = run();
    assert!(logs.is_empty(), "logged once: {logs:?}");
    assert_eq!(calls, ["request_headers", "route_metadata"]);
}

/// A host that cannot read route metadata whole (the native module): `route_metadata` gives
/// nothing, `unreadable_route_metadata` tells whether the namespace holds something.
struct PartialMetadataHost {
    host: CountingHost,
    namespace_in_use: Option<&'static str>,
}

impl HostView for PartialMetadataHost {
    fn request_header(&self, name: &str) -> Option<&[u8]> {
        self.host.request_header(name)
    }
    fn route_name(&self) -> Option<Vec<u8>> {
        self.host.route_name()
    }
    fn virtual_host_name(&self) -> Option<Vec<u8>> {
        self.host.virtual_host_name()
    }
    fn route_metadata(&self) -> Option<Vec<u8>> {
        None
    }
    fn unreadable_route_metadata(&self, namespace: &str) -> Option<&'static str> {
        self.host.call("unreadable_route_metadata");
        (self.namespace_in_use == Some(namespace)).then_some("no Struct getter")
    }
    fn random(&self) -> u32 {
        self.host.random()
    }
    fn wants_reason(&self) -> bool {
        self.host.wants_reason()
    }
}

#[test]
fn unreadable_route_metadata_turns_cors_off_on_its_route_and_is_logged_once_per_route() {
    let plan =
        plan(json!({"policy": {"allow_origins": ["*"]}, "route_metadata_namespace": "cors"}));
    let run = |route| {
        let view = PartialMetadataHost {
            host: CountingHost {
                route: Some(route),
                ..actual("https://a.com")
            },
            namespace_in_use: Some("cors"),
        };
        let logs = on_request(&plan.config, &plan.metadata, &view, |o| {
            assert!(matches!(o.selected, Selected::Invalid(_)));
            assert!(matches!(o.action, Action::Pass));
            o.logs
        });
        let calls = view.host.calls.borrow().clone();
        (logs, calls)
    };
    let (logs, calls) = run("one");
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].0, LogLevel::Error);
    assert!(
        logs[0].1.starts_with("route metadata filter_metadata.cors cannot be read here (no Struct getter), CORS is off on this route")
            && logs[0].1.ends_with("(first seen on route \"one\")"),
        "{logs:?}"
    );
    assert_eq!(
        calls,
        ["request_headers", "unreadable_route_metadata", "route_name"]
    );
    assert!(run("one").0.is_empty(), "logged once per route");
    assert_eq!(run("two").0.len(), 1, "another route is logged too");
}

#[test]
fn without_metadata_in_the_namespace_a_partial_metadata_host_selects_as_usual() {
    let mut config = ALLOW_A();
    config["route_metadata_namespace"] = json!("cors");
    let plan = plan(config);
    let view = PartialMetadataHost {
        host: actual("https://a.com"),
        namespace_in_use: Some("elsewhere"),
    };
    let step = on_request(&plan.config, &plan.metadata, &view, |o| {
        matches!(o.action, Action::Forward(_))
    });
    assert!(step, "the default policy applies");
    assert_eq!(
        *view.host.calls.borrow(),
        ["request_headers", "unreadable_route_metadata"]
    );
}

#[test]
fn shadow_mode_decides_and_counts_but_passes() {
    let plan = plan(json!({"policy": {"allow_origins": ["https://a.com"],
        "filter_enabled": {"default_value": {"numerator": 0}},
        "shadow_enabled": {"default_value": {"numerator": 100}}}}));
    let (step, counter, refusal) = summary(&plan, &preflight("https://evil.com"));
    assert_eq!(step, "pass");
    assert_eq!(refusal, Some("origin"));
    let name = stats::names().nth(counter.unwrap()).unwrap();
    assert_eq!(name, "cors.shadow.preflight.denied_origin");
}

#[test]
fn a_disabled_policy_makes_no_further_host_call() {
    let plan = plan(json!({"policy": {"allow_origins": ["https://a.com"],
        "filter_enabled": {"default_value": {"numerator": 0}}}}));
    let host = preflight("https://a.com");
    assert_eq!(summary(&plan, &host), ("pass".to_owned(), None, None));
    assert_eq!(*host.calls.borrow(), ["request_headers"]);
}

#[test]
fn a_partial_share_splits_on_the_hosts_random_number() {
    let plan = plan(json!({"policy": {"allow_origins": ["https://a.com"],
        "filter_enabled": {"default_value": {"numerator": 50}}}}));
    let enforcement = |random| {
        let host = CountingHost {
            random,
            ..actual("https://a.com")
        };
        run(&plan, &host, |o| o.enforcement)
    };
    assert_eq!(enforcement(0), Some(Enforcement::Enforced));
    assert_eq!(enforcement(u32::MAX), Some(Enforcement::Disabled));
}

#[test]
fn reasons_are_built_only_when_someone_reads_them() {
    let plan_plain = plan(ALLOW_A());
    let reason = |plan: &Plan, wants_reason| {
        let host = CountingHost {
            wants_reason,
            ..actual("https://evil.com")
        };
        run(plan, &host, |o| {
            let forwarded = match &o.action {
                Action::Forward(f) => f.reason.clone(),
                _ => None,
            };
            (o.verdict.and_then(|v| v.reason), forwarded, o.logs.len())
        })
    };
    assert_eq!(reason(&plan_plain, false), (None, None, 0));
    let (verdict, forwarded, logs) = reason(&plan_plain, true);
    assert_eq!(
        verdict.as_deref(),
        Some("origin https://evil.com is not in policy.allow_origins")
    );
    assert_eq!((forwarded, logs), (None, 1), "debug log only, no header");
    let mut config = ALLOW_A();
    config["policy"]["debug_reason_header"] = json!(true);
    let (_, forwarded, logs) = reason(&plan(config), false);
    assert!(forwarded.is_some_and(|r| r.starts_with("origin https://evil.com")));
    assert_eq!(logs, 0);
}

#[test]
fn preflight_headers_are_ignored_on_other_methods() {
    let plan = plan(ALLOW_A());
    let host = CountingHost {
        headers: vec![
            (":method", "GET"),
            ("access-control-request-method", "DELETE"),
        ],
        ..actual("https://a.com")
    };
    assert_eq!(
        summary(&plan, &host).0,
        "forward Allow { echo_origin: true }"
    );
}

fn route_config(value: Value) -> Option<RouteConfig> {
    Some(RouteConfig::from_bytes(value.to_string().as_bytes(), &mut Vec::new()).unwrap())
}

#[test]
fn a_per_route_policy_wins_over_every_filter_level_key() {
    let plan = plan(json!({
        "policy": {"allow_origins": ["https://a.com"]},
        "routes": {"api": {"allow_origins": ["https://routes.com"]}},
    }));
    let host = CountingHost {
        route: Some("api"),
        route_config: route_config(json!({"allow_origins": ["https://b.com"]})),
        ..preflight("https://b.com")
    };
    run(&plan, &host, |o| {
        assert!(matches!(o.selected, Selected::Policy(_, Source::PerRoute)));
        assert!(matches!(o.action, Action::Reply { status: 200, .. }));
    });
    // The route name is never read: the per-route configuration decided.
    assert_eq!(*host.calls.borrow(), ["request_headers", "route_config"]);
}

#[test]
fn a_null_per_route_config_turns_cors_off_and_an_empty_one_inherits() {
    let plan = plan(json!({"routes": {"api": {"allow_origins": ["https://a.com"]}}}));
    let off = CountingHost {
        route: Some("api"),
        route_config: route_config(Value::Null),
        ..preflight("https://a.com")
    };
    run(&plan, &off, |o| {
        assert!(matches!(o.selected, Selected::Off(Source::PerRoute)));
        assert!(matches!(o.action, Action::Pass));
    });
    for empty in [Some(RouteConfig::Inherit), route_config(json!({})), None] {
        let inherit = CountingHost {
            route: Some("api"),
            route_config: empty,
            ..preflight("https://a.com")
        };
        run(&plan, &inherit, |o| {
            assert!(matches!(
                o.selected,
                Selected::Policy(_, Source::Route("api"))
            ));
        });
    }
}

#[test]
fn a_bad_per_route_policy_is_refused_with_its_field_path() {
    let error =
        RouteConfig::from_bytes(br#"{"allow_origins": ["https://a.com/"]}"#, &mut Vec::new())
            .unwrap_err()
            .to_string();
    assert!(
        error.starts_with("typed_per_filter_config.allow_origins[0]: "),
        "{error}"
    );
    let error = RouteConfig::from_bytes(b"{nope", &mut Vec::new())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("per-route configuration is not valid JSON"),
        "{error}"
    );
    assert!(matches!(
        RouteConfig::from_bytes(b"  ", &mut Vec::new()),
        Ok(RouteConfig::Inherit)
    ));
}

#[test]
fn preflight_method_is_the_requested_method_of_preflights_only() {
    assert_eq!(
        preflight_method(&preflight("https://a.com")),
        Some(&b"PUT"[..])
    );
    assert_eq!(preflight_method(&actual("https://a.com")), None);
    assert_eq!(preflight_method(&no_origin()), None);
    let empty_request_method = CountingHost {
        origin: Some("https://a.com"),
        headers: vec![
            (":method", "OPTIONS"),
            ("access-control-request-method", ""),
        ],
        ..Default::default()
    };
    assert_eq!(preflight_method(&empty_request_method), None);
    let not_a_token = CountingHost {
        origin: Some("https://a.com"),
        headers: vec![
            (":method", "OPTIONS"),
            ("access-control-request-method", "P T"),
        ],
        ..Default::default()
    };
    assert_eq!(preflight_method(&not_a_token), None);
}

fn protected(mode: &str) -> Plan {
    plan(
        json!({"policy": {"allow_origins": ["https://a.com"], "allow_credentials": true,
        "cross_origin_protection": mode}}),
    )
}

/// A browser's request: `Origin` (or none), a method, `Sec-Fetch-Site` (or none) and more.
fn browser(
    origin: Option<&'static str>,
    method: &'static str,
    site: Option<&'static str>,
    more: &[(&'static str, &'static str)],
) -> CountingHost {
    let mut headers = vec![(":method", method), (":authority", "api.test")];
    headers.extend(site.map(|s| ("sec-fetch-site", s)));
    headers.extend_from_slice(more);
    CountingHost {
        origin,
        headers,
        ..Default::default()
    }
}

fn counter_name(counter: Option<usize>) -> Option<String> {
    counter.and_then(|c| stats::names().nth(c))
}

#[test]
fn cross_origin_protection_enforce_answers_403_without_cors_headers_and_counts() {
    let plan = protected("enforce");
    let form_post = browser(Some("https://evil.com"), "POST", Some("cross-site"), &[]);
    let (step, counter, refusal) = summary(&plan, &form_post);
    assert_eq!(step, "reply 403");
    assert_eq!(refusal, Some("cross_origin"));
    assert_eq!(
        counter_name(counter).as_deref(),
        Some("cors.actual.denied_cross_origin")
    );
    let headers = run(&plan, &form_post, |o| match o.action {
        Action::Reply { headers, .. } => format!("{headers:?}"),
        other => format!("{other:?}"),
    });
    assert_eq!(headers, r#"[("vary", "Origin")]"#, "no CORS headers");
    // The request was read once; the reply is the only other call.
    assert_eq!(host_calls(&plan, &form_post), (vec!["request_headers"], 2));
}

#[test]
fn cross_origin_protection_passes_what_go_passes() {
    let plan = protected("enforce");
    let cases = [
        // The allowed origin is trusted, even cross-site.
        (
            browser(Some("https://a.com"), "POST", Some("cross-site"), &[]),
            "forward Allow { echo_origin: true }",
        ),
        // Same-origin: the CORS decision as before (a refused origin gets no CORS headers).
        (
            browser(Some("https://evil.com"), "POST", Some("same-origin"), &[]),
            "forward Deny",
        ),
        (
            browser(Some("https://api.test"), "DELETE", None, &[]),
            "forward Deny",
        ),
        (
            browser(Some("https://evil.com"), "GET", Some("cross-site"), &[]),
            "forward Deny",
        ),
        // A preflight is OPTIONS: never the protection's business.
        (
            browser(
                Some("https://evil.com"),
                "OPTIONS",
                Some("cross-site"),
                &[("access-control-request-method", "PUT")],
            ),
            "forward Deny",
        ),
    ];
    for (host, want) in cases {
        let (step, _, refusal) = summary(&plan, &host);
        assert_eq!(step, want, "{:?}", host.headers);
        assert_ne!(refusal, Some("cross_origin"));
    }
    let no_site = browser(Some("https://evil.com"), "PUT", None, &[]);
    assert_eq!(
        summary(&plan, &no_site).0,
        "reply 403",
        "origin is not host"
    );
}

#[test]
fn cross_origin_protection_refuses_websocket_handshakes_from_refused_origins() {
    let plan = protected("enforce");
    let ws = [("upgrade", "websocket"), ("connection", "Upgrade")];
    let refused = browser(Some("https://evil.com"), "GET", Some("cross-site"), &ws);
    assert_eq!(summary(&plan, &refused).0, "reply 403");
    let allowed = browser(Some("https://a.com"), "GET", Some("cross-site"), &ws);
    assert_eq!(
        summary(&plan, &allowed).0,
        "forward Allow { echo_origin: true }"
    );
    let same = browser(Some("https://api.test"), "GET", None, &ws);
    assert_eq!(summary(&plan, &same).0, "forward Deny");
}

#[test]
fn cross_origin_protection_report_counts_as_shadow_logs_and_lets_through() {
    let plan = protected("report");
    let host = CountingHost {
        wants_reason: true,
        ..browser(Some("https://evil.com"), "POST", Some("cross-site"), &[])
    };
    let (step, counter, refusal) = summary(&plan, &host);
    assert_eq!(step, "forward Deny");
    assert_eq!(refusal, Some("cross_origin"));
    assert_eq!(
        counter_name(counter).as_deref(),
        Some("cors.shadow.actual.denied_cross_origin")
    );
    let logs = run(&plan, &host, |o| o.logs);
    assert_eq!(
        logs,
        [(
            LogLevel::Debug,
            "refused: cross-origin POST refused by policy.cross_origin_protection: Sec-Fetch-Site \
             is cross-site and origin https://evil.com is not in policy.allow_origins (report \
             mode: not enforced)"
                .to_owned()
        )]
    );
}

#[test]
fn cross_origin_protection_refuses_a_cross_site_unsafe_request_without_origin() {
    let enforce = protected("enforce");
    let host = browser(None, "POST", Some("cross-site"), &[]);
    let (step, counter, refusal) = summary(&enforce, &host);
    assert_eq!(
        (step.as_str(), refusal),
        ("reply 403", Some("cross_origin"))
    );
    assert_eq!(
        counter_name(counter).as_deref(),
        Some("cors.actual.denied_cross_origin")
    );
    let report = protected("report");
    let (step, counter, _) = summary(&report, &host);
    assert_eq!(step, "pass");
    assert_eq!(
        counter_name(counter).as_deref(),
        Some("cors.shadow.actual.denied_cross_origin")
    );
    // Neither header: not a browser, and still one host call.
    let curl = browser(None, "POST", None, &[]);
    assert_eq!(host_calls(&enforce, &curl), (vec!["request_headers"], 1));
    assert_eq!(summary(&enforce, &curl), ("pass".to_owned(), None, None));
}

#[test]
fn with_cross_origin_protection_off_nothing_changes() {
    // Another policy in this process has the protection on: requests under this one still
    // cost what they did.
    let _on = protected("enforce");
    let off = plan(ALLOW_A());
    let post = browser(None, "POST", Some("cross-site"), &[]);
    assert_eq!(host_calls(&off, &post), (vec!["request_headers"], 1));
    assert_eq!(summary(&off, &post).0, "pass");
    let form_post = browser(Some("https://evil.com"), "POST", Some("cross-site"), &[]);
    assert_eq!(summary(&off, &form_post).0, "forward Deny");
    assert_eq!(
        counter_name(summary(&off, &form_post).1).as_deref(),
        Some("cors.actual.denied_origin")
    );
}

#[test]
fn cross_origin_protection_reason_reaches_the_reason_header_and_names_the_evidence() {
    let plan = plan(json!({"policy": {"allowOrigins": ["https://a.com"],
        "crossOriginProtection": "enforce"}}));
    let host = browser(Some("https://evil.com"), "PATCH", None, &[]);
    let reason = run(&plan, &host, |o| o.verdict.and_then(|v| v.reason));
    assert_eq!(reason, None, "built only when someone reads it");
    let host = CountingHost {
        wants_reason: true,
        ..browser(Some("https://evil.com"), "PATCH", None, &[])
    };
    let reason = run(&plan, &host, |o| o.verdict.and_then(|v| v.reason));
    assert_eq!(
        reason.as_deref(),
        Some(
            "cross-origin PATCH refused by policy.crossOriginProtection: no Sec-Fetch-Site, and \
             origin https://evil.com is neither the request's host api.test nor in \
             policy.allowOrigins"
        )
    );
    let mut config = json!({"policy": {"allow_origins": ["https://a.com"],
        "cross_origin_protection": "enforce", "debug_reason_header": true}});
    let with_header = self::plan(config.take());
    let ws = browser(
        Some("https://evil.com"),
        "GET",
        Some("same-site"),
        &[("upgrade", "websocket")],
    );
    let headers = run(&with_header, &ws, |o| match o.action {
        Action::Reply { headers, .. } => format!("{headers:?}"),
        other => format!("{other:?}"),
    });
    assert!(
        headers.contains("cross-origin WebSocket handshake refused by policy.cross_origin_protection: Sec-Fetch-Site is same-site"),
        "{headers}"
    );
}
