//! Which origins a policy allows: the `allow_origins` shorthand (`*`, `null`, exact origins,
//! `scheme://*.domain[:port]` and `scheme://host:*` patterns) and Envoy's `allow_origin_string_match`, compiled once
//! at configure time into a matcher that answers per request with a hash lookup and a few
//! anchored comparisons.

use crate::string_match::StringMatcher;
use std::collections::HashSet;

/// The compiled origin part of a policy.
#[derive(Debug, Default)]
pub struct AllowOrigin {
    /// `*` (or Envoy's `exact: "*"`): every origin except `null` matches; `null` too when the
    /// policy has no credentials (a wildcard answer is then harmless).
    any: bool,
    /// An explicit `"null"` entry: the opaque origin of sandboxed frames and `file:` pages.
    null: bool,
    /// Serialized origins (`https://a.example`, default port omitted), looked up by hash.
    exact: HashSet<Box<str>>,
    patterns: Vec<OriginPattern>,
    string_matchers: Vec<StringMatcher>,
    /// What the string matchers match beyond what they seem to, for the load-time warnings.
    pub warnings: Vec<String>,
}

/// `scheme://*.domain[:port]` (one or more DNS labels, then `.domain`) or `scheme://host:*`
/// (any port of one host), or both at once (`scheme://*.domain:*`). Anchored: the scheme, the
/// host part and the port part must each match whole.
#[derive(Debug)]
struct OriginPattern {
    /// `scheme://`
    scheme_prefix: String,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug)]
enum HostPattern {
    /// This host exactly.
    Exact(String),
    /// `.domain`: any host of one or more labels before it.
    Subdomains(String),
}

#[derive(Debug)]
enum PortPattern {
    /// `:port`, empty for the scheme's default port.
    Exact(String),
    /// Any port, the default one (omitted) included.
    Any,
}

/// How a request's origin was allowed; the answer's `Access-Control-Allow-Origin` follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginMatch {
    /// Allowed by `*`.
    Any,
    /// Allowed by a specific entry: the answer must echo the origin.
    Listed,
}

impl AllowOrigin {
    /// Adds one `allow_origins` entry, or explains why it is not an origin or pattern.
    pub fn add_entry(&mut self, entry: &str) -> Result<(), String> {
        match entry {
            "*" => self.any = true,
            "null" => self.null = true,
            _ => match parse_origin(entry)? {
                ParsedOrigin::Exact(origin) => {
                    self.exact.insert(origin.into_boxed_str());
                }
                ParsedOrigin::Pattern(pattern) => self.patterns.push(pattern),
            },
        }
        Ok(())
    }

    /// Adds an Envoy `StringMatcher`. As in Envoy, a matcher that matches the string `*`
    /// (`exact: "*"`, or a regex such as `.*`) means any origin: Envoy tests every matcher
    /// against `*` before the origin. So it also counts as "any" for the credentials check.
    pub fn add_string_matcher(&mut self, mut matcher: StringMatcher) {
        self.warnings.extend(matcher.warning.take());
        if matcher.matches("*") {
            self.any = true;
        } else if matcher.is_exact_null() {
            self.null = true;
        } else {
            self.string_matchers.push(matcher);
        }
    }

    /// The policy fields whose entries a refused origin was compared with, for reasons.
    pub fn fields_in_use(&self) -> &'static str {
        if self.string_matchers.is_empty() {
            "allow_origins"
        } else if self.exact.is_empty() && self.patterns.is_empty() {
            "allow_origin_string_match"
        } else {
            "allow_origins or allow_origin_string_match"
        }
    }

    pub fn allows_any(&self) -> bool {
        self.any
    }

    pub fn is_empty(&self) -> bool {
        !self.any
            && !self.null
            && self.exact.is_empty()
            && self.patterns.is_empty()
            && self.string_matchers.is_empty()
    }

    /// A listed origin with the same scheme and host as `origin` but another port: the usual
    /// miss in local development, where a dev server's port changes (`cors-explain` hints).
    pub fn listed_with_another_port(&self, origin: &str) -> Option<&str> {
        let without_port = |o: &str| match o.rsplit_once(':') {
            Some((rest, port)) if port.bytes().all(|b| b.is_ascii_digit()) => rest.to_owned(),
            _ => o.to_owned(),
        };
        let wanted = without_port(origin);
        self.exact
            .iter()
            .map(|e| &**e)
            .find(|e| *e != origin && without_port(e) == wanted)
    }

    /// Matches a request's `Origin` value. `credentials` says whether the policy allows
    /// credentials: with them, `null` is only ever matched by an explicit entry.
    pub fn matches(&self, origin: &str, credentials: bool) -> Option<OriginMatch> {
        if origin == "null" {
            return if self.null {
                Some(OriginMatch::Listed)
            } else if self.any && !credentials {
                Some(OriginMatch::Any)
            } else {
                None
            };
        }
        if self.any {
            return Some(OriginMatch::Any);
        }
        if self.exact.contains(origin)
            || self.patterns.iter().any(|p| p.matches(origin))
            || self.string_matchers.iter().any(|m| m.matches(origin))
        {
            return Some(OriginMatch::Listed);
        }
        None
    }
}

impl OriginPattern {
    fn matches(&self, origin: &str) -> bool {
        let Some(rest) = origin.strip_prefix(self.scheme_prefix.as_str()) else {
            return false;
        };
        let host = match &self.port {
            PortPattern::Exact(suffix) if suffix.is_empty() => rest,
            PortPattern::Exact(suffix) => match rest.strip_suffix(suffix.as_str()) {
                Some(host) => host,
                None => return false,
            },
            PortPattern::Any => match rest.rsplit_once(':') {
                // Browsers serialize a port as its decimal number, without leading zeros.
                Some((host, port))
                    if !port.starts_with('0')
                        && port.parse::<u16>().is_ok_and(|p| p != 0)
                        && port.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    host
                }
                _ => rest,
            },
        };
        match &self.host {
            HostPattern::Exact(exact) => host == exact,
            HostPattern::Subdomains(suffix) => {
                let Some(labels) = host.strip_suffix(suffix.as_str()) else {
                    return false;
                };
                // Browsers serialize hosts in lower case; anything else (a port, user-info, a
                // path, an upper-case letter) is not one of this domain's origins.
                !labels.is_empty() && labels.split('.').all(is_serialized_label)
            }
        }
    }
}

enum ParsedOrigin {
    Exact(String),
    Pattern(OriginPattern),
}

/// A DNS label as a browser serializes it: lower-case letters, digits, `-` and `_`.
fn is_serialized_label(label: &str) -> bool {
    !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Parses `scheme://host[:port]`, `scheme://*.domain[:port]` or either with `:*` (any port)
/// into the form browsers send: lower-case scheme and host, the scheme's default port omitted.
fn parse_origin(entry: &str) -> Result<ParsedOrigin, String> {
    let not_origin = |why: &str| format!("{entry:?} is not an origin ({why})");
    let Some((scheme, authority)) = entry.split_once("://") else {
        return Err(not_origin(
            "expected scheme://host[:port], \"*\" or \"null\"",
        ));
    };
    let scheme = scheme.to_ascii_lowercase();
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return Err(not_origin("bad scheme"));
    }
    if let Some(i) = authority.find(['/', '?', '#']) {
        let what = if authority[i..] == *"/" {
            "trailing '/': an origin has no path"
        } else {
            "an origin has no path, query or fragment"
        };
        return Err(not_origin(what));
    }
    if authority.contains('@') {
        return Err(not_origin("an origin has no user-info"));
    }
    let (host, port) = match authority.strip_suffix(":*") {
        Some(host) => (host, PortPattern::Any),
        None => {
            let (host, port) = split_port(authority).map_err(&not_origin)?;
            let suffix = match port {
                Some(p) if Some(p) != default_port(&scheme) => format!(":{p}"),
                _ => String::new(),
            };
            (host, PortPattern::Exact(suffix))
        }
    };
    let host = host.to_ascii_lowercase();
    let scheme_prefix = format!("{scheme}://");
    if let Some(domain) = host.strip_prefix("*.") {
        if !is_dns_name(domain) {
            return Err(not_origin("after \"*.\" comes a domain name"));
        }
        return Ok(ParsedOrigin::Pattern(OriginPattern {
            scheme_prefix,
            host: HostPattern::Subdomains(format!(".{domain}")),
            port,
        }));
    }
    if host.contains('*') {
        return Err(not_origin(
            "'*' is only allowed as the whole first label (https://*.example.com) or as the whole port (http://localhost:*)",
        ));
    }
    let is_ipv6 = host.starts_with('[')
        && host.ends_with(']')
        && host.len() > 2
        && host[1..host.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    if !is_ipv6 && !is_dns_name(&host) {
        return Err(not_origin("bad host"));
    }
    match port {
        PortPattern::Exact(suffix) => Ok(ParsedOrigin::Exact(format!(
            "{scheme_prefix}{host}{suffix}"
        ))),
        PortPattern::Any => Ok(ParsedOrigin::Pattern(OriginPattern {
            scheme_prefix,
            host: HostPattern::Exact(host),
            port,
        })),
    }
}

/// An `allow_origins` entry that is one origin, as browsers serialize it (lower case, default
/// port omitted), or why it is not one.
pub(crate) fn serialize(entry: &str) -> Result<String, String> {
    match parse_origin(entry)? {
        ParsedOrigin::Exact(origin) => Ok(origin),
        ParsedOrigin::Pattern(_) => Err(format!("{entry:?} is a pattern, not an origin")),
    }
}

/// Splits `host[:port]` (IPv6 hosts in brackets) and checks the port.
fn split_port(authority: &str) -> Result<(&str, Option<u16>), &'static str> {
    let colon = if authority.starts_with('[') {
        authority
            .find(']')
            .map(|i| i + 1)
            .filter(|&i| i < authority.len())
    } else {
        authority.rfind(':')
    };
    let Some(colon) = colon else {
        return Ok((authority, None));
    };
    if authority.as_bytes().get(colon) != Some(&b':') {
        return Err("bad host");
    }
    let digits = &authority[colon + 1..];
    let port = (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse::<u16>().ok())
        .flatten()
        .filter(|&p| p != 0)
        .ok_or("bad port")?;
    Ok((&authority[..colon], Some(port)))
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// Dot-separated labels of letters, digits, `-` and `_` (lower case; also IPv4 addresses).
fn is_dns_name(host: &str) -> bool {
    !host.is_empty() && host.len() <= 253 && host.split('.').all(is_serialized_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(entries: &[&str]) -> AllowOrigin {
        let mut a = AllowOrigin::default();
        for e in entries {
            a.add_entry(e).unwrap();
        }
        a
    }

    #[test]
    fn exact_origins_are_compared_as_browsers_serialize_them() {
        let a = allow(&["HTTPS://App.Example.com:443", "http://localhost:8080"]);
        assert_eq!(
            a.matches("https://app.example.com", false),
            Some(OriginMatch::Listed)
        );
        assert_eq!(
            a.matches("http://localhost:8080", false),
            Some(OriginMatch::Listed)
        );
        assert_eq!(a.matches("http://localhost:8081", false), None);
        assert_eq!(a.matches("http://app.example.com", false), None);
        assert_eq!(a.matches("https://app.example.com:443", false), None);
    }

    #[test]
    fn any_port_pattern_matches_every_port_of_one_host_only() {
        let a = allow(&[
            "http://localhost:*",
            "https://*.example.com:*",
            "http://[::1]:*",
        ]);
        for ok in [
            "http://localhost",
            "http://localhost:3000",
            "http://localhost:65535",
            "https://a.example.com:8443",
            "https://a.b.example.com",
            "http://[::1]:8080",
            "http://[::1]",
        ] {
            assert_eq!(a.matches(ok, false), Some(OriginMatch::Listed), "{ok}");
        }
        for bad in [
            "https://localhost:3000",
            "http://localhost.evil.net:3000",
            "http://evil-localhost:3000",
            "http://localhost:03000",
            "http://localhost:0",
            "http://localhost:65536",
            "http://localhost:",
            "http://localhost:3000/",
            "http://localhost:3000:3000",
            "http://user@localhost:3000",
            "https://example.com:8443",
            "http://a.example.com:8443",
        ] {
            assert_eq!(a.matches(bad, false), None, "{bad}");
        }
        let listed = allow(&["http://localhost:3000"]);
        assert_eq!(
            listed.listed_with_another_port("http://localhost:5173"),
            Some("http://localhost:3000")
        );
        assert_eq!(
            listed.listed_with_another_port("https://localhost:5173"),
            None
        );
        let err = AllowOrigin::default()
            .add_entry("http://local*host:3000")
            .unwrap_err();
        assert!(err.contains("http://localhost:*"), "{err}");
    }

    #[test]
    fn subdomain_pattern_matches_labels_before_the_domain_only() {
        let a = allow(&["https://*.example.com"]);
        for ok in [
            "https://a.example.com",
            "https://a.b.example.com",
            "https://x-1.example.com",
        ] {
            assert_eq!(a.matches(ok, false), Some(OriginMatch::Listed), "{ok}");
        }
        for bad in [
            "https://example.com",
            "https://.example.com",
            "https://evilexample.com",
            "https://example.com.evil.net",
            "https://a.example.com.evil.net",
            "http://a.example.com",
            "https://a.example.com:8443",
            "https://evil.net#.example.com",
            "https://a@b.example.com",
            "https://A.example.com",
            "https://a..example.com",
        ] {
            assert_eq!(a.matches(bad, false), None, "{bad}");
        }
    }

    #[test]
    fn subdomain_pattern_keeps_its_port() {
        let a = allow(&["http://*.local.test:8080"]);
        assert!(a.matches("http://a.local.test:8080", false).is_some());
        assert!(a.matches("http://a.local.test", false).is_none());
        assert!(a.matches("http://a.local.test:80", false).is_none());
    }

    fn matcher(v: serde_json::Value) -> StringMatcher {
        StringMatcher::from_json(&v, "m").unwrap()
    }

    #[test]
    fn string_matcher_that_matches_star_means_any_origin_as_in_envoy() {
        for v in [
            serde_json::json!({"exact": "*"}),
            serde_json::json!({"safe_regex": {"regex": ".*"}}),
            serde_json::json!({"contains": "*"}),
        ] {
            let mut a = AllowOrigin::default();
            a.add_string_matcher(matcher(v.clone()));
            assert!(a.allows_any(), "{v}");
            assert_eq!(
                a.matches("https://x.example", false),
                Some(OriginMatch::Any)
            );
        }
        let mut a = AllowOrigin::default();
        a.add_string_matcher(matcher(
            serde_json::json!({"safe_regex": {"regex": "https://.*"}}),
        ));
        assert!(!a.allows_any());
        assert_eq!(
            a.matches("https://x.example", true),
            Some(OriginMatch::Listed)
        );
    }

    #[test]
    fn null_origin_is_never_matched_by_prefix_suffix_contains_or_regex() {
        let mut a = AllowOrigin::default();
        for v in [
            serde_json::json!({"prefix": "nu"}),
            serde_json::json!({"suffix": "ll"}),
            serde_json::json!({"contains": "ul"}),
            serde_json::json!({"safe_regex": {"regex": "[a-z]+"}}),
            serde_json::json!({"exact": "NULL", "ignore_case": true}),
        ] {
            a.add_string_matcher(matcher(v));
        }
        assert_eq!(a.matches("null", false), None);
        a.add_string_matcher(matcher(serde_json::json!({"exact": "null"})));
        assert_eq!(a.matches("null", true), Some(OriginMatch::Listed));
    }

    #[test]
    fn null_origin_needs_an_explicit_entry_when_credentials_are_allowed() {
        assert_eq!(allow(&["*"]).matches("null", false), Some(OriginMatch::Any));
        assert_eq!(allow(&["*"]).matches("null", true), None);
        assert_eq!(
            allow(&["null"]).matches("null", true),
            Some(OriginMatch::Listed)
        );
        assert_eq!(allow(&["https://a.com"]).matches("null", false), None);
    }

    #[test]
    fn entries_that_are_not_origins_are_refused_with_the_reason() {
        let mut a = AllowOrigin::default();
        for (bad, why) in [
            ("app.example.com", "expected scheme://host"),
            ("https://app.example.com/", "trailing '/'"),
            ("https://app.example.com/path", "no path"),
            ("https://user@app.example.com", "user-info"),
            ("https://app.example.com:0", "bad port"),
            ("https://app.example.com:99999", "bad port"),
            ("https://app.*.com", "whole first label"),
            ("https://*.", "domain name"),
            ("https://a b.com", "bad host"),
            ("1http://a.com", "bad scheme"),
        ] {
            let err = a.add_entry(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn ipv6_and_ports() {
        let a = allow(&["http://[::1]:8080", "https://127.0.0.1"]);
        assert!(a.matches("http://[::1]:8080", false).is_some());
        assert!(a.matches("https://127.0.0.1", false).is_some());
    }
}
