//! Notes on how a policy treated a request: partial or shadow enforcement, near misses of a
//! refused origin (the usual typos of a hand-written `Origin`), `Access-Control-Request-*`
//! headers on a request that is not a preflight.

use crate::input::Input;
use crate::report::Explanation;
use cors_core::decision::Kind;
use cors_core::headers::{is_token, list_items};
use cors_core::policy::Policy;

/// Notes on how the policy treated the request: partial or shadow enforcement, near misses of
/// a refused origin, Access-Control-Request-* headers on a request that is not a preflight.
pub fn policy_notes(ex: &mut Explanation, policy: &Policy, input: &Input, origin: &str) {
    if policy.filter_enabled.is_partial() {
        ex.notes.push(format!(
            "{}.filter_enabled is {}%: shown is an enforced request; the others are {}",
            policy.name,
            policy.filter_enabled.percent(),
            if policy.shadow_enabled.includes(0) {
                "evaluated in shadow mode (counted, not enforced)"
            } else {
                "passed through untouched"
            }
        ));
    }
    if ex.kind.is_none() {
        ex.notes.push(format!(
            "{}.filter_enabled is 0%: the filter does nothing",
            policy.name
        ));
        return;
    }
    let is_options = input.method() == "OPTIONS";
    if !is_options
        && (input.request_method.is_some()
            || input.request_headers.is_some()
            || input.private_network)
    {
        ex.notes
            .push("Access-Control-Request-* headers are only read on OPTIONS requests".into());
    }
    if ex.refusal == Some("origin") {
        ex.notes.extend(
            origin_hints(policy, origin)
                .into_iter()
                .map(|(why, allowed)| format!("{why}: {allowed} would be allowed")),
        );
    }
    if ex.refusal == Some("headers") {
        ex.notes.extend(refused_headers_note(policy, input));
    }
    if is_options && ex.kind == Some(Kind::Actual) {
        ex.notes.push(
            "OPTIONS without a non-empty Access-Control-Request-Method is not a preflight: browsers never send one \
             as a preflight, and the filter treats it as an actual request (forwarded upstream). \
             Send a real preflight: add Access-Control-Request-Method"
                .into(),
        );
    }
    if ex.shadow {
        ex.notes.push(format!(
            "shadow mode ({}.shadow_enabled): counted and logged, not enforced: the request passes through untouched",
            policy.name
        ));
    }
}

/// Every requested header the policy does not allow (the reason, like the filter's log line
/// and `x-cors-reason`, names only the first the filter met), when there are several.
fn refused_headers_note(policy: &Policy, input: &Input) -> Option<String> {
    let requested = input.request_headers.as_deref()?;
    let refused: Vec<String> = list_items(requested.as_bytes())
        .filter(|h| !is_token(h) || !policy.headers.allows(h, true))
        .map(|h| String::from_utf8_lossy(h).to_ascii_lowercase())
        .collect();
    let field = if policy.vocabulary.camel_case() {
        "allowHeaders"
    } else {
        "allow_headers"
    };
    (refused.len() > 1).then(|| {
        format!(
            "every requested header not in {}.{field}: {} (the reason names the first)",
            policy.name,
            refused.join(", ")
        )
    })
}

/// Near misses of a refused origin that the policy would allow (using its own matcher): the
/// usual typos of a hand-written `Origin` (browsers never send them).
fn origin_hints(policy: &Policy, origin: &str) -> Vec<(&'static str, String)> {
    let allowed = |o: &str| {
        policy
            .origins
            .matches(o, policy.allow_credentials)
            .is_some()
    };
    let mut hints = Vec::new();
    let Some((scheme, rest)) = origin.split_once("://") else {
        return hints;
    };
    if let Some((authority, _path)) = rest.split_once('/') {
        let bare = format!("{scheme}://{authority}");
        if allowed(&bare) {
            hints.push((
                "an Origin has no path and no trailing slash (browsers send scheme://host[:port])",
                bare,
            ));
        }
        return hints;
    }
    if let Some(listed) = policy.origins.listed_with_another_port(origin) {
        let any_port = match listed.rsplit_once(':') {
            Some((rest, port)) if port.bytes().all(|b| b.is_ascii_digit()) => rest,
            _ => listed,
        };
        hints.push((
            "only another port of this host is listed, and dev servers change ports; with the any-port pattern in allow_origins, every port",
            format!("{any_port}:*"),
        ));
    }
    let lower = origin.to_ascii_lowercase();
    if lower != origin && allowed(&lower) {
        hints.push(("browsers send the origin in lower case", lower));
    }
    let default_port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => "",
    };
    if let Some(without) = origin
        .strip_suffix(default_port)
        .filter(|_| !default_port.is_empty())
    {
        if allowed(without) {
            hints.push(("browsers omit the default port", without.to_owned()));
        }
    }
    hints
}
