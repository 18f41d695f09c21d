//! HTTP header names the filter reads and writes, and the byte-level rules for values that
//! come from requests (untrusted) or go into responses (must be valid header values).

pub const ORIGIN: &str = "origin";
pub const VARY: &str = "vary";
pub const ACCESS_CONTROL_REQUEST_METHOD: &str = "access-control-request-method";
pub const ACCESS_CONTROL_REQUEST_HEADERS: &str = "access-control-request-headers";
pub const ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK: &str = "access-control-request-private-network";
pub const ACCESS_CONTROL_ALLOW_ORIGIN: &str = "access-control-allow-origin";
pub const ACCESS_CONTROL_ALLOW_CREDENTIALS: &str = "access-control-allow-credentials";
pub const ACCESS_CONTROL_ALLOW_METHODS: &str = "access-control-allow-methods";
pub const ACCESS_CONTROL_ALLOW_HEADERS: &str = "access-control-allow-headers";
pub const ACCESS_CONTROL_ALLOW_PRIVATE_NETWORK: &str = "access-control-allow-private-network";
pub const ACCESS_CONTROL_EXPOSE_HEADERS: &str = "access-control-expose-headers";
pub const ACCESS_CONTROL_MAX_AGE: &str = "access-control-max-age";
pub const CORS_REASON: &str = "x-cors-reason";
/// Read by the cross-origin protection only (`cross_origin`).
pub const SEC_FETCH_SITE: &str = "sec-fetch-site";
pub const AUTHORITY: &str = ":authority";
pub const UPGRADE: &str = "upgrade";
pub const PROTOCOL: &str = ":protocol";

/// Every CORS response header. On a CORS response the filter owns these: whatever the upstream
/// set is replaced or removed, so the browser sees exactly one value, ours.
pub const CORS_RESPONSE_HEADERS: [&str; 7] = [
    ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_ALLOW_CREDENTIALS,
    ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_PRIVATE_NETWORK,
    ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_MAX_AGE,
];

/// RFC 9110 `tchar`: the bytes a method or header name (a `token`) may contain.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// True for a non-empty RFC 9110 token (a method or a header name).
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Splits a comma-separated header list into its items, trimming optional whitespace and
/// skipping empty items, as the Fetch standard's "get, decode, and split" does.
pub fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|item| !item.is_empty())
}

/// Removes leading and trailing spaces and tabs.
pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// True when `list` (a header value such as `Vary`'s) holds `item`, compared case-insensitively.
pub fn list_contains(list: &[u8], item: &str) -> bool {
    list_items(list).any(|i| i.eq_ignore_ascii_case(item.as_bytes()))
}
