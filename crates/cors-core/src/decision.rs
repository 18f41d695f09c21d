//! The CORS decision for one request, and what it does to the response. Pure: the proxy-wasm
//! shell reads the request headers, calls `decide`, remembers the `ResponsePlan`, and applies
//! `response_edits` to whatever response comes back (upstream's or a local reply).

use crate::headers::*;
use crate::origin::OriginMatch;
use crate::policy::Policy;
use crate::token_list::TokenList;
use std::borrow::Cow;

/// What the filter needs to know about a request that carries `Origin`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    pub origin: &'a [u8],
    pub method: &'a [u8],
    /// `Access-Control-Request-Method`; read only for `OPTIONS`.
    pub request_method: Option<&'a [u8]>,
    /// `Access-Control-Request-Headers`.
    pub request_headers: Option<&'a [u8]>,
    /// `Access-Control-Request-Private-Network: true`.
    pub private_network: bool,
}

impl Request<'_> {
    /// A preflight is `OPTIONS` with `Origin` and a non-empty `Access-Control-Request-Method`
    /// (as in Envoy and the Fetch standard); any other request is an actual request.
    pub fn is_preflight(&self) -> bool {
        self.method == b"OPTIONS" && self.request_method.is_some_and(|m| !m.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Preflight,
    Actual,
}

/// Why a request was refused; the class is what the counters count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial<'a> {
    Origin,
    Method(&'a [u8]),
    Header(&'a [u8]),
    PrivateNetwork,
    /// `Access-Control-Request-Headers` past `REQUEST_HEADERS_LIMITS`: no browser sends it.
    RequestHeadersOverLimit,
}

/// Bounds on a preflight's `Access-Control-Request-Headers`, far above anything a browser sends
/// (one line of lower-case names, no empty elements): `(empty elements, names, bytes)`. Past
/// them, the preflight is refused with no CORS headers, and the work per preflight stays
/// bounded. Envoy joins repeated field lines with commas (dropping empty ones) before a filter
/// sees them, so field lines count as list elements.
pub const REQUEST_HEADERS_LIMITS: (usize, usize, usize) = (16, 128, 8192);

fn within_limits(requested: &[u8]) -> bool {
    let (max_empty, max_names, max_bytes) = REQUEST_HEADERS_LIMITS;
    if requested.len() > max_bytes {
        return false;
    }
    let (mut empty, mut names) = (0, 0);
    for item in requested.split(|&b| b == b',').map(trim_ows) {
        let count = if item.is_empty() {
            &mut empty
        } else {
            &mut names
        };
        *count += 1;
        if empty > max_empty || names > max_names {
            return false;
        }
    }
    true
}

#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Answer now, without forwarding (an allowed preflight, or a refused one that must not
    /// reach the upstream).
    Reply {
        status: u32,
        headers: Vec<(&'static str, Cow<'a, str>)>,
    },
    /// Forward the request; apply the plan to its response.
    Forward(ResponsePlan),
}

/// What to do to the response of a forwarded CORS request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponsePlan {
    /// Allowed: set `Access-Control-Allow-Origin` (`*`, or the request's origin when
    /// `echo_origin`) and the policy's credentials and exposed headers.
    Allow { echo_origin: bool },
    /// Refused: remove every CORS header the upstream set, keep `Vary: Origin`.
    Deny,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Decision<'a> {
    pub kind: Kind,
    pub denial: Option<Denial<'a>>,
    pub action: Action<'a>,
}

const SAFELISTED_METHODS: [&[u8]; 3] = [b"GET", b"HEAD", b"POST"];

/// Decides a request carrying `Origin` under `policy`.
pub fn decide<'a>(policy: &'a Policy, request: &Request<'a>) -> Decision<'a> {
    // A serialized origin is visible ASCII (hosts are punycode). Anything else is refused
    // before matching: a loose matcher (`prefix`, `contains`, a regex) must never get the
    // filter to echo control bytes, spaces or non-ASCII into `Access-Control-Allow-Origin`.
    let origin = Some(request.origin)
        .filter(|o| o.iter().all(|b| (0x21..0x7f).contains(b)))
        .and_then(|o| std::str::from_utf8(o).ok());
    let matched = origin.and_then(|o| policy.origins.matches(o, policy.allow_credentials));
    let kind = if request.is_preflight() {
        Kind::Preflight
    } else {
        Kind::Actual
    };
    let (Some(origin), Some(matched)) = (origin, matched) else {
        let action = match kind {
            Kind::Preflight if !policy.forward_not_matching_preflights => Action::Reply {
                status: 403,
                headers: refusal_headers(policy, request, Denial::Origin),
            },
            _ => Action::Forward(ResponsePlan::Deny),
        };
        return Decision {
            kind,
            denial: Some(Denial::Origin),
            action,
        };
    };
    let echo_origin = matched == OriginMatch::Listed || policy.allow_credentials;
    if kind == Kind::Preflight && !request.request_headers.is_none_or(within_limits) {
        let denial = Denial::RequestHeadersOverLimit;
        return Decision {
            kind,
            denial: Some(denial),
            action: Action::Reply {
                status: 403,
                headers: refusal_headers(policy, request, denial),
            },
        };
    }
    if kind == Kind::Actual {
        return Decision {
            kind,
            denial: None,
            action: Action::Forward(ResponsePlan::Allow { echo_origin }),
        };
    }
    let (reply, denial) = preflight_reply(policy, request, origin, echo_origin);
    Decision {
        kind,
        denial,
        action: Action::Reply {
            status: 200,
            headers: reply,
        },
    }
}

/// The answer to a preflight from an allowed origin. A method or header outside the policy is
/// never listed, so the browser refuses it; `denial` records which one.
fn preflight_reply<'a>(
    policy: &'a Policy,
    request: &Request<'a>,
    origin: &'a str,
    echo_origin: bool,
) -> (Vec<(&'static str, Cow<'a, str>)>, Option<Denial<'a>>) {
    let mut denial = None;
    let mut headers: Vec<(&'static str, Cow<'a, str>)> = Vec::with_capacity(8);
    headers.push((
        ACCESS_CONTROL_ALLOW_ORIGIN,
        Cow::Borrowed(if echo_origin { origin } else { "*" }),
    ));
    if policy.allow_credentials {
        headers.push((ACCESS_CONTROL_ALLOW_CREDENTIALS, Cow::Borrowed("true")));
    }

    let method = request.request_method.unwrap_or_default();
    match &policy.methods {
        TokenList::Any if is_token(method) => {
            // Mirror: the only form of "any method" that browsers accept with credentials.
            if let Ok(m) = std::str::from_utf8(method) {
                headers.push((ACCESS_CONTROL_ALLOW_METHODS, Cow::Borrowed(m)));
            }
        }
        TokenList::Any => denial = Some(Denial::Method(method)),
        listed => {
            if let Some(rendered) = listed.rendered() {
                headers.push((ACCESS_CONTROL_ALLOW_METHODS, Cow::Borrowed(rendered)));
            }
            if !SAFELISTED_METHODS.contains(&method) && !listed.allows(method, false) {
                denial = Some(Denial::Method(method));
            }
        }
    }

    let requested = request.request_headers.unwrap_or_default();
    let refused_header =
        list_items(requested).find(|h| !is_token(h) || !policy.headers.allows(h, true));
    match &policy.headers {
        TokenList::Any => {
            // Mirror the requested names (lower-cased, each a valid token) rather than echo
            // the raw value: it is untrusted and goes into our response.
            let mut mirrored = String::new();
            for item in list_items(requested).filter(|h| is_token(h)) {
                if !mirrored.is_empty() {
                    mirrored.push_str(", ");
                }
                mirrored.extend(item.iter().map(|&b| char::from(b.to_ascii_lowercase())));
            }
            if !mirrored.is_empty() {
                headers.push((ACCESS_CONTROL_ALLOW_HEADERS, Cow::Owned(mirrored)));
            }
        }
        listed => {
            if let Some(rendered) = listed.rendered() {
                headers.push((ACCESS_CONTROL_ALLOW_HEADERS, Cow::Borrowed(rendered)));
            }
        }
    }
    if let (None, Some(h)) = (denial, refused_header) {
        denial = Some(Denial::Header(h));
    }

    // Browsers ignore it on a preflight answer; Envoy's filter and the Gateway API's
    // conformance test send it, and it tells a reader of the answer the whole policy response.
    if let Some(expose) = &policy.expose_headers {
        headers.push((ACCESS_CONTROL_EXPOSE_HEADERS, Cow::Borrowed(expose)));
    }
    if let Some(max_age) = &policy.max_age {
        headers.push((ACCESS_CONTROL_MAX_AGE, Cow::Borrowed(max_age)));
    }
    if request.private_network {
        if policy.allow_private_network_access {
            headers.push((ACCESS_CONTROL_ALLOW_PRIVATE_NETWORK, Cow::Borrowed("true")));
        } else if denial.is_none() {
            denial = Some(Denial::PrivateNetwork);
        }
    }
    let vary = preflight_vary(
        echo_origin,
        policy.methods == TokenList::Any,
        policy.headers == TokenList::Any,
    );
    if !vary.is_empty() {
        headers.push((VARY, Cow::Borrowed(vary)));
    }
    if let (Some(d), true) = (denial, policy.debug_reason_header) {
        headers.push((CORS_REASON, Cow::Owned(reason(policy, request, d))));
    }
    (headers, denial)
}

/// The `Vary` of a preflight answer: every request header the answer was computed from.
fn preflight_vary(origin: bool, methods: bool, headers: bool) -> &'static str {
    match (origin, methods, headers) {
        (false, false, false) => "",
        (true, false, false) => "Origin",
        (false, true, false) => "Access-Control-Request-Method",
        (false, false, true) => "Access-Control-Request-Headers",
        (true, true, false) => "Origin, Access-Control-Request-Method",
        (true, false, true) => "Origin, Access-Control-Request-Headers",
        (false, true, true) => "Access-Control-Request-Method, Access-Control-Request-Headers",
        (true, true, true) => {
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        }
    }
}

/// Headers of a 403 to a refused preflight that must not be forwarded: no CORS headers at all
/// (Envoy's filter answers 200 and lists its allowed methods; that leaks the policy).
fn refusal_headers<'a>(
    policy: &'a Policy,
    request: &Request<'a>,
    denial: Denial<'a>,
) -> Vec<(&'static str, Cow<'a, str>)> {
    let mut headers = vec![(VARY, Cow::Borrowed("Origin"))];
    if policy.debug_reason_header {
        headers.push((CORS_REASON, Cow::Owned(reason(policy, request, denial))));
    }
    headers
}

/// A one-line, header-safe explanation of a refusal, naming the policy field.
pub fn reason(policy: &Policy, request: &Request, denial: Denial) -> String {
    // The policy's name holds a configured route or virtual host name: any characters.
    let name = if policy.name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Cow::Borrowed(policy.name.as_str())
    } else {
        Cow::Owned(printable(policy.name.as_bytes()))
    };
    match denial {
        Denial::Origin if request.origin == b"null" => format!(
            "origin null is not allowed by {name}: only an explicit \"null\" in allow_origins allows it{}",
            if policy.allow_credentials { " (credentials are on, so \"*\" does not)" } else { "" }
        ),
        Denial::Origin => format!(
            "origin {} is not in {name}.{}",
            printable(request.origin),
            if policy.gateway_api {
                "allowOrigins"
            } else {
                policy.origins.fields_in_use()
            }
        ),
        Denial::Method(m) => format!(
            "method {} is not in {name}.{}",
            printable(m),
            if policy.gateway_api { "allowMethods" } else { "allow_methods" }
        ),
        Denial::Header(h) => format!(
            "header {} is not in {name}.{}",
            printable(h),
            if policy.gateway_api { "allowHeaders" } else { "allow_headers" }
        ),
        Denial::PrivateNetwork => {
            format!("private network access is not allowed by {name} (allow_private_network_access)")
        }
        Denial::RequestHeadersOverLimit => {
            let (empty, names, bytes) = REQUEST_HEADERS_LIMITS;
            format!(
                "Access-Control-Request-Headers is past the filter's limits ({empty} empty elements or field lines, {names} names, {bytes} bytes): no browser sends that"
            )
        }
    }
}

/// Untrusted bytes made safe for a log line or a header value: visible ASCII kept, the rest
/// escaped, long values cut.
fn printable(bytes: &[u8]) -> String {
    const MAX: usize = 120;
    let mut out = String::new();
    for &b in bytes.iter().take(MAX) {
        if (0x21..0x7f).contains(&b) && b != b'\\' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > MAX {
        // ASCII: the text may go into an `x-cors-reason` header value.
        out.push_str("...");
    }
    if out.is_empty() {
        out.push_str("\"\"");
    }
    out
}

/// The header changes for the response to a forwarded CORS request: `(name, Some(value))`
/// sets the header to that one value, `(name, None)` removes it. `existing` is the response's
/// headers as Envoy gives them (lower-case names), so that only what is there is removed;
/// borrowed or owned, as the caller has them.
pub fn response_edits<'a, N: AsRef<[u8]>, V: AsRef<[u8]>>(
    plan: ResponsePlan,
    policy: &'a Policy,
    origin: &'a [u8],
    reason: Option<&'a str>,
    existing: &[(N, V)],
) -> Vec<(&'static str, Option<Cow<'a, [u8]>>)> {
    let mut edits: Vec<(&'static str, Option<Cow<'a, [u8]>>)> = Vec::with_capacity(4);
    let mut set = |name, value: Option<Cow<'a, [u8]>>| edits.push((name, value));
    let present = |name: &str| existing.iter().any(|(n, _)| n.as_ref() == name.as_bytes());
    let vary_origin = match plan {
        ResponsePlan::Allow { echo_origin } => {
            let acao: &[u8] = if echo_origin { origin } else { b"*" };
            set(ACCESS_CONTROL_ALLOW_ORIGIN, Some(Cow::Borrowed(acao)));
            let owned = [
                (
                    ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    policy.allow_credentials.then_some("true"),
                ),
                (
                    ACCESS_CONTROL_EXPOSE_HEADERS,
                    policy.expose_headers.as_deref(),
                ),
            ];
            for (name, value) in owned {
                match value {
                    Some(v) => set(name, Some(Cow::Borrowed(v.as_bytes()))),
                    None if present(name) => set(name, None),
                    None => {}
                }
            }
            for name in CORS_RESPONSE_HEADERS {
                if !owned.iter().any(|(n, _)| *n == name)
                    && name != ACCESS_CONTROL_ALLOW_ORIGIN
                    && present(name)
                {
                    set(name, None);
                }
            }
            echo_origin
        }
        ResponsePlan::Deny => {
            for name in CORS_RESPONSE_HEADERS {
                if present(name) {
                    set(name, None);
                }
            }
            if let Some(r) = reason {
                set(CORS_REASON, Some(Cow::Borrowed(r.as_bytes())));
            }
            true
        }
    };
    if vary_origin {
        if let Some(vary) = vary_with_origin(existing) {
            set(VARY, Some(Cow::Owned(vary)));
        }
    }
    edits
}

/// The response's `Vary` with `Origin` added, or `None` when it already varies on Origin
/// (or on everything, `*`). Several `Vary` lines are joined into one.
fn vary_with_origin<N: AsRef<[u8]>, V: AsRef<[u8]>>(existing: &[(N, V)]) -> Option<Vec<u8>> {
    let mut joined: Vec<u8> = Vec::new();
    for (_, value) in existing
        .iter()
        .filter(|(n, _)| n.as_ref() == VARY.as_bytes())
    {
        let value = value.as_ref();
        if list_contains(value, "origin") || list_contains(value, "*") {
            return None;
        }
        for item in list_items(value) {
            joined.extend_from_slice(item);
            joined.extend_from_slice(b", ");
        }
    }
    joined.extend_from_slice(b"Origin");
    Some(joined)
}

#[cfg(test)]
mod tests {
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
                    d.denial,
                    Some(Denial::RequestHeadersOverLimit),
                    "{value:.40}"
                );
                assert!(matches!(d.action, Action::Reply { status: 403, .. }));
                assert_eq!(
                    reply_headers(&d),
                    [("vary".to_owned(), "Origin".to_owned())]
                );
            } else {
                assert_eq!(d.denial, None, "{value:.40}");
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
        assert_eq!(d.denial, None);
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
        assert_eq!(d.denial, Some(Denial::Method(b"DELETE")));
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
        assert_eq!(d.denial, Some(Denial::Header(b"authorization")));
        assert_eq!(
            header(&reply_headers(&d), "access-control-allow-headers"),
            Some("x-a")
        );
    }

    #[test]
    fn refused_origin_preflight_is_forwarded_or_refused_with_403() {
        let p = policy(json!({"allow_origins": ["https://a.com"]}));
        let d = decide(&p, &preflight("https://evil.com", "GET", None));
        assert_eq!(d.action, Action::Forward(ResponsePlan::Deny));
        assert_eq!(d.denial, Some(Denial::Origin));
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
            Action::Forward(ResponsePlan::Allow { echo_origin: true })
        );
    }

    #[test]
    fn private_network_preflight_needs_the_policy_flag() {
        let mut r = preflight("https://a.com", "GET", None);
        r.private_network = true;
        let on = policy(
            json!({"allow_origins": ["https://a.com"], "allow_private_network_access": true}),
        );
        assert_eq!(
            header(
                &reply_headers(&decide(&on, &r)),
                "access-control-allow-private-network"
            ),
            Some("true")
        );
        let off = policy(json!({"allow_origins": ["https://a.com"]}));
        let d = decide(&off, &r);
        assert_eq!(d.denial, Some(Denial::PrivateNetwork));
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
        plan: ResponsePlan,
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
            ResponsePlan::Allow { echo_origin: true },
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
            ResponsePlan::Allow { echo_origin: true },
            &p,
            "https://a.com",
            &[("vary", "origin")],
        );
        assert!(e.iter().all(|(n, _)| n != "vary"));
        let e = edits(ResponsePlan::Deny, &p, "https://x.com", &[("vary", "*")]);
        assert!(e.is_empty());
    }

    #[test]
    fn refused_actual_response_loses_upstream_cors_headers_and_varies_on_origin() {
        let p = policy(json!({"allow_origins": ["https://a.com"]}));
        let e = edits(
            ResponsePlan::Deny,
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
        assert_eq!(decide(&p, &r).denial, Some(Denial::Origin));
        assert!(reason(&p, &r, Denial::Origin).contains("https://x\\xff"));
    }

    #[test]
    fn reason_for_a_long_origin_is_cut_with_ascii_dots() {
        let p = policy(json!({"allow_origins": ["https://a.com"]}));
        let long = format!("https://{}.com", "a".repeat(300));
        let r = reason(&p, &actual(&long), Denial::Origin);
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
            assert_eq!(decide(&p, &r).denial, Some(Denial::Origin), "{origin:?}");
        }
        assert_eq!(decide(&p, &actual("https://a.com")).denial, None);
    }

    #[test]
    fn reason_escapes_a_route_name_with_control_or_non_ascii_characters() {
        let p = Policy::from_json(
            &json!({"allow_origins": ["https://a.com"]}),
            "routes.a\r\n\u{e9}",
            &mut Vec::new(),
        )
        .unwrap();
        let r = reason(&p, &actual("https://x.com"), Denial::Origin);
        assert_eq!(
            r,
            "origin https://x.com is not in routes.a\\x0d\\x0a\\xc3\\xa9.allow_origins"
        );
    }

    #[test]
    fn reasons_name_the_policy_field() {
        let p = policy(json!({"allow_origins": ["https://a.com"]}));
        assert_eq!(
            reason(&p, &actual("https://x.example"), Denial::Origin),
            "origin https://x.example is not in routes.api.allow_origins"
        );
    }
}
