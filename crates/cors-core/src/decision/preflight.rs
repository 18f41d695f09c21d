//! The answer to a preflight: the allowed one (200 with the policy's headers) and the refused
//! one that must not be forwarded (403 without CORS headers).

use super::*;

/// The answer to a preflight from an allowed origin. A method or header outside the policy is
/// never listed, so the browser refuses it; `refusal` records which one.
pub(super) fn preflight_reply<'a, 'r: 'a>(
    policy: &'a Policy,
    request: &Request<'r>,
    origin: &'a str,
    echo_origin: bool,
) -> (Vec<(&'static str, Cow<'a, str>)>, Option<Refusal<'r>>) {
    let mut refusal = None;
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
        TokenList::Any => refusal = Some(Refusal::Method(method)),
        listed => {
            if let Some(rendered) = listed.rendered() {
                headers.push((ACCESS_CONTROL_ALLOW_METHODS, Cow::Borrowed(rendered)));
            }
            if !SAFELISTED_METHODS.contains(&method) && !listed.allows(method, false) {
                refusal = Some(Refusal::Method(method));
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
    if let (None, Some(h)) = (refusal, refused_header) {
        refusal = Some(Refusal::Header(h));
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
        } else if refusal.is_none() {
            refusal = Some(Refusal::PrivateNetwork);
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
    if let (Some(d), true) = (refusal, policy.debug_reason_header) {
        headers.push((CORS_REASON, Cow::Owned(reason(policy, request, d))));
    }
    (headers, refusal)
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
pub(super) fn refusal_headers<'a, 'r: 'a>(
    policy: &'a Policy,
    request: &Request<'r>,
    refusal: Refusal<'r>,
) -> Vec<(&'static str, Cow<'a, str>)> {
    let mut headers = vec![(VARY, Cow::Borrowed("Origin"))];
    if policy.debug_reason_header {
        headers.push((CORS_REASON, Cow::Owned(reason(policy, request, refusal))));
    }
    headers
}
