//! The decision's behaviours, named after what they pin.

use super::*;
use serde_json::{json, Value};

fn policy(v: Value) -> Policy {
    Policy::from_json(&v, "routes.api", &mut Vec::new()).unwrap()
}

fn preflight<'a>(origin: &'a str, method: &'a str, headers: Option<&'a str>) -> Request<'a> {
    Request {
        origin: origin.as_bytes(),
        method: b"OPTIONS",
        request_method: Some(method.as_bytes()),
        request_headers: headers.map(str::as_bytes),
        private_network: false,
    }
}

fn actual(origin: &str) -> Request<'_> {
    Request {
        origin: origin.as_bytes(),
        method: b"GET",
        ..Default::default()
    }
}

fn reply_headers(d: &Decision) -> Vec<(String, String)> {
    match &d.action {
        Action::Reply { headers, .. } => headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[test]
fn a_preflight_past_the_request_headers_limits_is_refused_with_no_cors_headers() {
    let p = policy(
        json!({"allow_origins": ["https://a.com"], "allow_methods": "PUT", "allow_headers": "*"}),
    );
    let (max_empty, max_names, max_bytes) = REQUEST_HEADERS_LIMITS;
    let at_limit = format!("x-a{}", ",".repeat(max_empty));
    let too_many_empty = format!("x-a{}", ",".repeat(max_empty + 1));
    let names = |n: usize| {
        (0..n)
            .map(|i| format!("x-{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let long = format!("x-{}", "a".repeat(max_bytes));
    for (value, refused) in [
        (at_limit.as_str(), false),
        (too_many_empty.as_str(), true),
        (&names(max_names), false),
        (&names(max_names + 1), true),
        (&long, true),
    ] {
        let d = decide(&p, &preflight("https://a.com", "PUT", Some(value)));
        if refused {
            assert_eq!(
                d.refusal,
                Some(Refusal::RequestHeadersOverLimit),
                "{value:.40}"
            );
            assert!(matches!(d.action, Action::Reply { status: 403, .. }));
            assert_eq!(
                reply_headers(&d),
                [("vary".to_owned(), "Origin".to_owned())]
            );
        } else {
            assert_eq!(d.refusal, None, "{value:.40}");
        }
    }
}

fn header<'h>(h: &'h [(String, String)], name: &str) -> Option<&'h str> {
    h.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
fn allowed_preflight_is_answered_with_the_policy() {
    let p = policy(
        json!({"allow_origins": ["https://a.com"], "allow_methods": "GET, PUT",
        "allow_headers": "x-a", "max_age": 600, "allow_credentials": true}),
    );
    let d = decide(&p, &preflight("https://a.com", "PUT", Some("X-A")));
    assert_eq!(d.refusal, None);
    let h = reply_headers(&d);
    assert_eq!(
        h,
        [
            ("access-control-allow-origin", "https://a.com"),
            ("access-control-allow-credentials", "true"),
            ("access-control-allow-methods", "GET, PUT"),
            ("access-control-allow-headers", "x-a"),
            ("access-control-max-age", "600"),
            ("vary", "Origin"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}

#[test]
fn preflight_for_any_origin_answers_star_without_vary() {
    let p = policy(json!({"allow_origins": ["*"], "allow_methods": "GET"}));
    let h = reply_headers(&decide(&p, &preflight("https://x.com", "GET", None)));
    assert_eq!(header(&h, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&h, "vary"), None);
    assert_eq!(header(&h, "access-control-allow-headers"), None);
}

#[test]
fn mirrored_methods_and_headers_are_validated_and_varied_on() {
    let p = policy(
        json!({"allow_origins": ["https://a.com"], "allow_methods": "*", "allow_headers": "*"}),
    );
    let h = reply_headers(&decide(
        &p,
        &preflight(
            "https://a.com",
            "PATCH",
            Some("X-A, ,Authorization, bad header"),
        ),
    ));
    assert_eq!(header(&h, "access-control-allow-methods"), Some("PATCH"));
    assert_eq!(
        header(&h, "access-control-allow-headers"),
        Some("x-a, authorization")
    );
    assert_eq!(
        header(&h, "vary"),
        Some("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
    );
}

#[test]
fn refused_method_or_header_is_never_listed() {
    let p = policy(
        json!({"allow_origins": ["https://a.com"], "allow_methods": "GET, POST", "allow_headers": "x-a",
        "debug_reason_header": true}),
    );
    let d = decide(&p, &preflight("https://a.com", "DELETE", None));
    assert_eq!(d.refusal, Some(Refusal::Method(b"DELETE")));
    let h = reply_headers(&d);
    assert!(!header(&h, "access-control-allow-methods")
        .unwrap()
        .contains("DELETE"));
    assert_eq!(
        header(&h, "x-cors-reason"),
        Some("method DELETE is not in routes.api.allow_methods")
    );
    let d = decide(
        &p,
        &preflight("https://a.com", "GET", Some("x-a, authorization")),
    );
    assert_eq!(d.refusal, Some(Refusal::Header(b"authorization")));
    assert_eq!(
        header(&reply_headers(&d), "access-control-allow-headers"),
        Some("x-a")
    );
}

#[test]
fn refused_origin_preflight_is_forwarded_or_refused_with_403() {
    let p = policy(json!({"allow_origins": ["https://a.com"]}));
    let d = decide(&p, &preflight("https://evil.com", "GET", None));
    assert_eq!(d.action, Action::Forward(Grant::Deny));
    assert_eq!(d.refusal, Some(Refusal::Origin));
    let p = policy(
        json!({"allow_origins": ["https://a.com"], "forward_not_matching_preflights": false}),
    );
    let d = decide(&p, &preflight("https://evil.com", "GET", None));
    assert!(matches!(&d.action, Action::Reply { status: 403, .. }));
    assert!(reply_headers(&d)
        .iter()
        .all(|(n, _)| !n.starts_with("access-control")));
}

#[test]
fn options_without_request_method_is_an_actual_request() {
    let p = policy(json!({"allow_origins": ["https://a.com"]}));
    let mut r = preflight("https://a.com", "", None);
    assert_eq!(decide(&p, &r).kind, Kind::Actual);
    r.request_method = None;
    assert_eq!(
        decide(&p, &r).action,
        Action::Forward(Grant::Allow { echo_origin: true })
    );
}

#[test]
fn private_network_preflight_needs_the_policy_flag() {
    let mut r = preflight("https://a.com", "GET", None);
    r.private_network = true;
    let on =
        policy(json!({"allow_origins": ["https://a.com"], "allow_private_network_access": true}));
    assert_eq!(
        header(
            &reply_headers(&decide(&on, &r)),
            "access-control-allow-private-network"
        ),
        Some("true")
    );
    let off = policy(json!({"allow_origins": ["https://a.com"]}));
    let d = decide(&off, &r);
    assert_eq!(d.refusal, Some(Refusal::PrivateNetwork));
    assert_eq!(
        header(&reply_headers(&d), "access-control-allow-private-network"),
        None
    );
}

fn existing(h: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    h.iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn edits(
    plan: Grant,
    p: &Policy,
    origin: &str,
    upstream: &[(&str, &str)],
) -> Vec<(String, Option<String>)> {
    response_edits(plan, p, origin.as_bytes(), None, &existing(upstream))
        .into_iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                v.map(|v| String::from_utf8(v.into_owned()).unwrap()),
            )
        })
        .collect()
}

#[test]
fn allowed_actual_response_gets_one_value_each_and_vary_merged() {
    let p = policy(
        json!({"allow_origins": ["https://a.com"], "expose_headers": "x-total", "allow_credentials": true}),
    );
    let e = edits(
        Grant::Allow { echo_origin: true },
        &p,
        "https://a.com",
        &[
            ("access-control-allow-origin", "*"),
            ("access-control-max-age", "5"),
            ("vary", "Accept-Encoding"),
        ],
    );
    let s = |a: &str, b: Option<&str>| (a.to_string(), b.map(str::to_string));
    assert_eq!(
        e,
        [
            s("access-control-allow-origin", Some("https://a.com")),
            s("access-control-allow-credentials", Some("true")),
            s("access-control-expose-headers", Some("x-total")),
            s("access-control-max-age", None),
            s("vary", Some("Accept-Encoding, Origin")),
        ]
    );
}

#[test]
fn vary_is_left_alone_when_it_already_covers_origin() {
    let p = policy(json!({"allow_origins": ["https://a.com"]}));
    let e = edits(
        Grant::Allow { echo_origin: true },
        &p,
        "https://a.com",
        &[("vary", "origin")],
    );
    assert!(e.iter().all(|(n, _)| n != "vary"));
    let e = edits(Grant::Deny, &p, "https://x.com", &[("vary", "*")]);
    assert!(e.is_empty());
}

#[test]
fn refused_actual_response_loses_upstream_cors_headers_and_varies_on_origin() {
    let p = policy(json!({"allow_origins": ["https://a.com"]}));
    let e = edits(
        Grant::Deny,
        &p,
        "https://x.com",
        &[
            ("access-control-allow-origin", "https://x.com"),
            ("access-control-allow-credentials", "true"),
        ],
    );
    assert_eq!(
        e,
        [
            ("access-control-allow-origin".to_string(), None),
            ("access-control-allow-credentials".to_string(), None),
            ("vary".to_string(), Some("Origin".to_string())),
        ]
    );
}

#[test]
fn non_utf8_origin_is_refused_not_echoed() {
    let p = policy(json!({"allow_origin_string_match": [{"prefix": "https://"}]}));
    let r = Request {
        origin: b"https://x\xff",
        method: b"GET",
        ..Default::default()
    };
    assert_eq!(decide(&p, &r).refusal, Some(Refusal::Origin));
    assert!(reason(&p, &r, Refusal::Origin).contains("https://x\\xff"));
}

#[test]
fn reason_for_a_long_origin_is_cut_with_ascii_dots() {
    let p = policy(json!({"allow_origins": ["https://a.com"]}));
    let long = format!("https://{}.com", "a".repeat(300));
    let r = reason(&p, &actual(&long), Refusal::Origin);
    assert!(r.contains("aaa..."), "{r}");
    assert!(r.bytes().all(|b| (0x20..0x7f).contains(&b)), "{r}");
}

#[test]
fn origin_with_control_space_or_non_ascii_bytes_is_refused_even_by_a_loose_matcher() {
    let p = policy(json!({"allow_origin_string_match": [{"prefix": "https://"}]}));
    for origin in [
        &b"https://a.com\r\nx-injected: 1"[..],
        b"https://a.com\x00",
        b"https://a.com\x7f",
        b"https://a.com x",
        "https://\u{e9}.com".as_bytes(),
    ] {
        let r = Request {
            origin,
            method: b"GET",
            ..Default::default()
        };
        assert_eq!(decide(&p, &r).refusal, Some(Refusal::Origin), "{origin:?}");
    }
    assert_eq!(decide(&p, &actual("https://a.com")).refusal, None);
}

#[test]
fn reason_escapes_a_route_name_with_control_or_non_ascii_characters() {
    let p = Policy::from_json(
        &json!({"allow_origins": ["https://a.com"]}),
        "routes.a\r\n\u{e9}",
        &mut Vec::new(),
    )
    .unwrap();
    let r = reason(&p, &actual("https://x.com"), Refusal::Origin);
    assert_eq!(
        r,
        "origin https://x.com is not in routes.a\\x0d\\x0a\\xc3\\xa9.allow_origins"
    );
}

#[test]
fn reasons_name_the_policy_field() {
    let p = policy(json!({"allow_origins": ["https://a.com"]}));
    assert_eq!(
        reason(&p, &actual("https://x.example"), Refusal::Origin),
        "origin https://x.example is not in routes.api.allow_origins"
    );
}
