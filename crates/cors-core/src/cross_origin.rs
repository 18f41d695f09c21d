//! Cross-origin protection (`cross_origin_protection`): CORS only hides responses, so a
//! "simple" cross-origin request (a form POST, a `no-cors` fetch) and a WebSocket handshake
//! reach the upstream and act there whatever the policy says. This refuses them, with the
//! rule of Go 1.25's `net/http.CrossOriginProtection` (golang/go `src/net/http/csrf.go`), the
//! policy's allowed origins standing for Go's trusted origins:
//!
//! - safe methods (`GET`, `HEAD`, `OPTIONS`) pass, except a WebSocket handshake (our addition:
//!   a handshake is a `GET` that acts);
//! - `Sec-Fetch-Site: same-origin` or `none` passes; any other value is refused unless the
//!   origin is allowed;
//! - without `Sec-Fetch-Site`: no `Origin` passes (not a browser), an `Origin` whose host is
//!   the request's `Host` passes, an allowed origin passes, anything else is refused.
//!
//! `check` is pure; the pipeline asks for the headers lazily, so that only a policy with the
//! protection on reads more than before.

use crate::fields::{expected, JsonError};
use crate::headers::{list_contains, AUTHORITY, PROTOCOL, SEC_FETCH_SITE, UPGRADE};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The values of `cross_origin_protection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protection {
    /// The default: the filter does what it did before the field existed.
    #[default]
    Off,
    /// Decided, counted (`cors.shadow.actual.denied_cross_origin`) and logged, not enforced.
    Report,
    /// A refused request is answered 403 and never reaches the upstream.
    Enforce,
}

impl Protection {
    pub fn from_json(value: &Value, path: &str) -> Result<Protection, JsonError> {
        match value.as_str() {
            Some("off") => Ok(Protection::Off),
            Some("report") => Ok(Protection::Report),
            Some("enforce") => Ok(Protection::Enforce),
            Some(other) => Err(JsonError::new(
                path,
                format!(
                    "expected one of \"off\", \"report\", \"enforce\", found {}",
                    crate::fields::render(&Value::String(other.to_owned()))
                ),
            )),
            None => Err(expected(path, "\"off\", \"report\" or \"enforce\"", value)),
        }
    }
}

/// How many policies with the protection on exist in this process (this VM, for Wasm). While
/// there are none, a request without `Origin` is not looked at any further: the protection
/// costs nothing where no policy asks for it, including policies that come later from route
/// metadata or a per-route configuration, which no filter configuration knows in advance.
static POLICIES_PROTECTING: AtomicUsize = AtomicUsize::new(0);

/// Whether any policy with the protection on exists.
pub fn in_use() -> bool {
    POLICIES_PROTECTING.load(Ordering::Relaxed) > 0
}

/// Held by a policy with the protection on, for as long as it lives.
#[derive(Debug)]
pub struct InUse(());

impl InUse {
    pub fn new(protection: Protection) -> Option<InUse> {
        (protection != Protection::Off).then(|| {
            POLICIES_PROTECTING.fetch_add(1, Ordering::Relaxed);
            InUse(())
        })
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        POLICIES_PROTECTING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What kind of request the protection looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarded<'a> {
    /// A method other than `GET`, `HEAD`, `OPTIONS` (compared as Go does, case-sensitively).
    Method(&'a [u8]),
    /// `GET` with `Upgrade: websocket` (HTTP/1.1; Envoy also turns an HTTP/2 extended CONNECT
    /// into this form before filters see it).
    WebSocket,
}

/// What shows the request comes from another origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence<'a> {
    /// `Sec-Fetch-Site` with a value other than `same-origin` or `none`.
    SecFetchSite(&'a [u8]),
    /// No `Sec-Fetch-Site`, and `Origin`'s host is not the request's `Host` (here).
    OriginIsNotHost(&'a [u8]),
}

/// Why the protection refuses a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrossOrigin<'a> {
    pub guarded: Guarded<'a>,
    pub evidence: Evidence<'a>,
}

/// Whether the protection looks at a request with this method: `None` for a safe method that
/// is not a WebSocket handshake. `header` is asked for `upgrade` on a `GET` only.
pub fn guarded<'a>(
    method: &'a [u8],
    header: impl Fn(&str) -> Option<&'a [u8]>,
) -> Option<Guarded<'a>> {
    match method {
        b"GET" => header(UPGRADE)
            .filter(|u| list_contains(u, "websocket"))
            .map(|_| Guarded::WebSocket),
        b"HEAD" | b"OPTIONS" => None,
        // RFC 8441's extended CONNECT, should a host hand it over as such: an unsafe method
        // anyway, named for what it is.
        b"CONNECT" if header(PROTOCOL).is_some_and(|p| p.eq_ignore_ascii_case(b"websocket")) => {
            Some(Guarded::WebSocket)
        }
        method => Some(Guarded::Method(method)),
    }
}

/// Go's check on a guarded request: the refusal, or `None` when it passes. `trusted` says
/// whether `origin` is among the policy's allowed origins; it is asked last, only when the
/// other headers say the request is cross-origin.
pub fn check<'a>(
    guarded: Guarded<'a>,
    origin: Option<&'a [u8]>,
    header: impl Fn(&str) -> Option<&'a [u8]>,
    trusted: impl FnOnce() -> bool,
) -> Option<CrossOrigin<'a>> {
    // Go's `Header.Get` gives "" for an absent header and for an empty one alike.
    let evidence = match sec_fetch_site(&header) {
        Some(b"same-origin" | b"none") => return None,
        Some(site) => Evidence::SecFetchSite(site),
        None => {
            let origin = origin?;
            let host = header(AUTHORITY).unwrap_or_default();
            if origin_host(origin) == Some(host) {
                return None;
            }
            Evidence::OriginIsNotHost(host)
        }
    };
    if origin.is_some() && trusted() {
        return None;
    }
    Some(CrossOrigin { guarded, evidence })
}

/// `Sec-Fetch-Site`, `None` when absent or empty.
pub fn sec_fetch_site<'a>(header: &impl Fn(&str) -> Option<&'a [u8]>) -> Option<&'a [u8]> {
    header(SEC_FETCH_SITE).filter(|site| !site.is_empty())
}

/// Whether a `Sec-Fetch-Site` value (present, not empty) lets a request pass by itself.
pub fn is_same_origin(site: &[u8]) -> bool {
    matches!(site, b"same-origin" | b"none")
}

/// The `host[:port]` of a serialized origin (`scheme://host[:port]`), as Go's `url.Parse(o).Host`
/// gives it for what browsers send; `None` for `null` and anything without `://`.
fn origin_host(origin: &[u8]) -> Option<&[u8]> {
    let at = origin.windows(3).position(|w| w == b"://")?;
    let scheme = origin.get(..at)?;
    let valid_scheme = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b));
    if !valid_scheme {
        return None;
    }
    let rest = origin.get(at + 3..)?;
    let end = rest
        .iter()
        .position(|b| b"/?#".contains(b))
        .unwrap_or(rest.len());
    let authority = rest.get(..end)?;
    // Go drops `user@` (browsers never send it).
    let host = match authority.iter().rposition(|&b| b == b'@') {
        Some(i) => authority.get(i + 1..)?,
        None => authority,
    };
    Some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a [u8]> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_bytes())
        }
    }

    fn refused(
        method: &str,
        origin: Option<&str>,
        pairs: &[(&str, &str)],
        trusted: bool,
    ) -> Option<String> {
        let h = headers(pairs);
        let g = guarded(method.as_bytes(), &h)?;
        check(g, origin.map(str::as_bytes), &h, || trusted).map(|c| format!("{c:?}"))
    }

    #[test]
    fn safe_methods_pass_and_websocket_handshakes_do_not() {
        let cross = [("sec-fetch-site", "cross-site")];
        for m in ["GET", "HEAD", "OPTIONS"] {
            assert_eq!(refused(m, Some("https://evil.com"), &cross, false), None);
        }
        let ws = [("sec-fetch-site", "cross-site"), ("upgrade", "WebSocket")];
        assert!(refused("GET", Some("https://evil.com"), &ws, false)
            .is_some_and(|r| r.contains("WebSocket")));
        let h2 = [("sec-fetch-site", "cross-site"), (":protocol", "websocket")];
        assert!(refused("CONNECT", Some("https://evil.com"), &h2, false)
            .is_some_and(|r| r.contains("WebSocket")));
        assert!(
            refused("get", None, &cross, false).is_some(),
            "as Go: case-sensitive"
        );
    }

    #[test]
    fn sec_fetch_site_decides_first() {
        for site in ["same-origin", "none"] {
            let h = [("sec-fetch-site", site)];
            assert_eq!(refused("POST", Some("https://evil.com"), &h, false), None);
        }
        for site in ["cross-site", "same-site", "Same-Origin"] {
            let h = [("sec-fetch-site", site), (":authority", "example.com")];
            assert!(refused("POST", Some("https://example.com"), &h, false).is_some());
            assert_eq!(refused("POST", Some("https://a.com"), &h, true), None);
            assert!(
                refused("POST", None, &h, true).is_some(),
                "no origin to trust"
            );
        }
    }

    #[test]
    fn without_sec_fetch_site_origin_is_compared_with_host() {
        let h = [(":authority", "example.com"), ("sec-fetch-site", "")];
        assert_eq!(refused("POST", None, &h, false), None, "not a browser");
        assert_eq!(
            refused("POST", Some("https://example.com"), &h, false),
            None
        );
        assert_eq!(refused("POST", Some("http://example.com"), &h, false), None);
        for origin in [
            "https://attacker.example",
            "null",
            "https://example.com:8443",
            "example.com",
        ] {
            assert!(
                refused("POST", Some(origin), &h, false).is_some(),
                "{origin}"
            );
        }
        assert_eq!(refused("POST", Some("https://a.com"), &h, true), None);
    }

    #[test]
    fn origin_host_is_what_go_parses() {
        let host =
            |o: &str| origin_host(o.as_bytes()).map(|h| String::from_utf8_lossy(h).into_owned());
        assert_eq!(host("https://a.com:8080").as_deref(), Some("a.com:8080"));
        assert_eq!(host("https://u@a.com/x?y").as_deref(), Some("a.com"));
        assert_eq!(host("null"), None);
        assert_eq!(host("://a.com"), None);
        assert_eq!(host("1x://a.com"), None);
    }

    #[test]
    fn protecting_policies_are_counted_while_they_live() {
        let before = POLICIES_PROTECTING.load(Ordering::Relaxed);
        assert!(InUse::new(Protection::Off).is_none());
        let held = InUse::new(Protection::Report);
        assert!(in_use());
        drop(held);
        // Other tests run in parallel: only this one's share is known.
        assert!(POLICIES_PROTECTING.load(Ordering::Relaxed) <= before + 1);
    }
}
