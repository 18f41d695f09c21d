//! Why a request was refused, in words: the debug log, the opt-in `x-cors-reason` header and
//! `cors-explain` show it.

use super::*;

/// A one-line, header-safe explanation of a refusal, naming the policy field.
pub fn reason(policy: &Policy, request: &Request, refusal: Refusal) -> String {
    // The policy's name holds a configured route or virtual host name: any characters.
    let name = if policy.name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Cow::Borrowed(policy.name.as_str())
    } else {
        Cow::Owned(printable(policy.name.as_bytes()))
    };
    match refusal {
        Refusal::Origin if request.origin == b"null" => format!(
            "origin null is not allowed by {name}: only an explicit \"null\" in allow_origins allows it{}",
            if policy.allow_credentials { " (credentials are on, so \"*\" does not)" } else { "" }
        ),
        Refusal::Origin => format!(
            "origin {} is not in {name}.{}",
            printable(request.origin),
            if policy.vocabulary.camel_case() {
                "allowOrigins"
            } else {
                policy.origins.fields_in_use()
            }
        ),
        Refusal::Method(m) => format!(
            "method {} is not in {name}.{}",
            printable(m),
            if policy.vocabulary.camel_case() { "allowMethods" } else { "allow_methods" }
        ),
        Refusal::Header(h) => format!(
            "header {} is not in {name}.{}",
            printable(h),
            if policy.vocabulary.camel_case() { "allowHeaders" } else { "allow_headers" }
        ),
        Refusal::PrivateNetwork => {
            format!("private network access is not allowed by {name} (allow_private_network_access)")
        }
        Refusal::CrossOrigin(refused) => cross_origin(policy, &name, request, refused),
        Refusal::RequestHeadersOverLimit => {
            let (empty, names, bytes) = REQUEST_HEADERS_LIMITS;
            format!(
                "Access-Control-Request-Headers is past the filter's limits ({empty} empty elements or field lines, {names} names, {bytes} bytes): no browser sends that"
            )
        }
    }
}

/// `cross-origin POST refused by policy.cross_origin_protection: Sec-Fetch-Site is cross-site
/// and origin https://evil.com is not in policy.allow_origins`.
fn cross_origin(policy: &Policy, name: &str, request: &Request, refused: CrossOrigin) -> String {
    use crate::cross_origin::{Evidence, Guarded};
    let what = match refused.guarded {
        Guarded::Method(m) => printable(m),
        Guarded::WebSocket => "WebSocket handshake".to_owned(),
    };
    let field = if policy.vocabulary.camel_case() {
        "crossOriginProtection"
    } else {
        "cross_origin_protection"
    };
    let origins = if policy.vocabulary.camel_case() {
        "allowOrigins"
    } else {
        policy.origins.fields_in_use()
    };
    let origin = printable(request.origin);
    let why = match (refused.evidence, request.origin.is_empty()) {
        (Evidence::SecFetchSite(site), true) => {
            format!("Sec-Fetch-Site is {} and there is no Origin", printable(site))
        }
        (Evidence::SecFetchSite(site), false) => format!(
            "Sec-Fetch-Site is {} and origin {origin} is not in {name}.{origins}",
            printable(site)
        ),
        (Evidence::OriginIsNotHost(host), _) => format!(
            "no Sec-Fetch-Site, and origin {origin} is neither the request's host {} nor in {name}.{origins}",
            printable(host)
        ),
    };
    format!("cross-origin {what} refused by {name}.{field}: {why}")
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
