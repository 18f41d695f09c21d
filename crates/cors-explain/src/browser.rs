//! What a browser concludes from a response: the Fetch standard's CORS check and CORS-preflight
//! check, applied to the headers the filter would send. Failure messages follow Chrome's
//! console wording, so that they can be matched with what a developer sees. `conclude` applies
//! them to an explained request, with and without credentials.

use crate::input::Input;
use crate::report::{BrowserConclusion, Explanation};
use cors_core::headers::list_items;

/// CORS-safelisted methods.
const SAFELISTED_METHODS: [&str; 3] = ["GET", "HEAD", "POST"];

/// The response as the browser sees it: lower-case names.
pub type Headers = [(String, String)];

fn values<'h>(headers: &'h Headers, name: &str) -> Vec<&'h str> {
    headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn one<'h>(headers: &'h Headers, name: &str) -> Option<&'h str> {
    values(headers, name).first().copied()
}

/// Fetch "CORS check": one `Access-Control-Allow-Origin` equal to the origin (or `*` without
/// credentials), and with credentials `Access-Control-Allow-Credentials: true`.
pub fn cors_check(headers: &Headers, origin: &str, credentials: bool) -> Result<(), String> {
    let acao = values(headers, "access-control-allow-origin");
    let value = match acao.as_slice() {
        [] => {
            return Err(
                "No 'Access-Control-Allow-Origin' header is present on the requested resource."
                    .into(),
            )
        }
        [v] if !v.contains(',') => *v,
        many => {
            return Err(format!(
                "The 'Access-Control-Allow-Origin' header contains multiple values '{}', but only one is allowed.",
                many.join(", ")
            ))
        }
    };
    if value == "*" && !credentials {
        return Ok(());
    }
    if value == "*" {
        return Err(
            "The value of the 'Access-Control-Allow-Origin' header in the response must not be \
                    the wildcard '*' when the request's credentials mode is 'include'."
                .into(),
        );
    }
    if value != origin {
        return Err(format!(
            "The 'Access-Control-Allow-Origin' header has a value '{value}' that is not equal to the supplied origin."
        ));
    }
    if !credentials {
        return Ok(());
    }
    let acac = one(headers, "access-control-allow-credentials").unwrap_or("");
    if acac != "true" {
        return Err(format!(
            "The value of the 'Access-Control-Allow-Credentials' header in the response is '{acac}' \
             which must be 'true' when the request's credentials mode is 'include'."
        ));
    }
    Ok(())
}

/// A preflight the browser sends: what it asks for.
pub struct Preflight<'a> {
    pub origin: &'a str,
    pub method: &'a str,
    /// The names in `Access-Control-Request-Headers`.
    pub headers: Vec<String>,
    pub private_network: bool,
}

/// Fetch "CORS-preflight fetch" checks on the answer (status, CORS check, private network
/// access, methods, headers). `Ok` means the browser goes on with the actual request.
pub fn preflight_check(
    status: u32,
    headers: &Headers,
    p: &Preflight,
    credentials: bool,
) -> Result<(), String> {
    let prefix = "Response to preflight request doesn't pass access control check: ";
    cors_check(headers, p.origin, credentials).map_err(|e| format!("{prefix}{e}"))?;
    if !(200..300).contains(&status) {
        return Err(format!("{prefix}It does not have HTTP ok status."));
    }
    if p.private_network && one(headers, "access-control-allow-private-network") != Some("true") {
        return Err(format!(
            "{prefix}No 'Access-Control-Allow-Private-Network' header was present in the preflight \
             response for this private network request."
        ));
    }
    let list = |name| -> Result<Vec<String>, String> {
        let mut items = Vec::new();
        for value in values(headers, name) {
            for item in value.split(',').map(|i| i.trim_matches([' ', '\t'])) {
                if item.is_empty() {
                    continue;
                }
                if !cors_core::headers::is_token(item.as_bytes()) {
                    return Err(format!("{prefix}'{name}' has an invalid item '{item}'."));
                }
                items.push(item.to_owned());
            }
        }
        Ok(items)
    };
    let methods = list("access-control-allow-methods")?;
    let names = list("access-control-allow-headers")?;
    let method_ok = SAFELISTED_METHODS.contains(&p.method)
        || methods.iter().any(|m| m == p.method)
        || (!credentials && methods.iter().any(|m| m == "*"));
    if !method_ok {
        return Err(format!(
            "Method {} is not allowed by Access-Control-Allow-Methods in preflight response.",
            p.method
        ));
    }
    for name in &p.headers {
        let listed = names.iter().any(|n| n.eq_ignore_ascii_case(name));
        let wildcard = !credentials
            && !name.eq_ignore_ascii_case("authorization")
            && names.iter().any(|n| n == "*");
        if !listed && !wildcard {
            return Err(format!(
                "Request header field {} is not allowed by Access-Control-Allow-Headers in preflight response.",
                name.to_ascii_lowercase()
            ));
        }
    }
    Ok(())
}

/// True when a browser would preflight a request with this method and these headers.
pub fn needs_preflight(method: &str, header_names: &[String]) -> bool {
    !SAFELISTED_METHODS.contains(&method)
        || header_names.iter().any(|h| {
            !matches!(
                h.to_ascii_lowercase().as_str(),
                "accept" | "accept-language" | "content-language" | "content-type"
            )
        })
}

/// The browser's conclusion, with and without credentials.
pub fn conclude(ex: &Explanation, origin: &str, method: &str, input: &Input) -> BrowserConclusion {
    let requested: Vec<String> = input
        .request_headers
        .as_deref()
        .map(|h| {
            list_items(h.as_bytes())
                .map(|i| String::from_utf8_lossy(i).to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let status = ex.status.or(input.upstream_status).unwrap_or(200);
    let preflight = method == "OPTIONS"
        && input
            .request_method
            .as_deref()
            .is_some_and(|m| !m.is_empty());
    if preflight {
        let asked = input.request_method.as_deref().unwrap_or("");
        let p = Preflight {
            origin,
            method: asked,
            headers: requested,
            private_network: input.private_network,
        };
        let judge = |credentials: bool| {
            preflight_check(status, &ex.headers, &p, credentials)?;
            match &ex.then {
                Some(then) => cors_check(&then.headers, origin, credentials)
                    .map(|()| format!("preflight passes; the actual {asked} request passes the CORS check: the page reads the response"))
                    .map_err(|e| format!("preflight passes, but the actual {asked} request is blocked: {e}")),
                None => Ok(format!("preflight passes; the browser sends the actual {asked} request")),
            }
        };
        return BrowserConclusion {
            what: format!("a preflight for {asked}, then the actual request"),
            without_credentials: judge(false),
            with_credentials: judge(true),
        };
    }
    let judge = |credentials: bool| {
        cors_check(&ex.headers, origin, credentials).map(|()| {
            let exposed = ex
                .headers
                .iter()
                .find(|(n, _)| n == "access-control-expose-headers")
                .map(|(_, v)| v.as_str());
            match exposed {
                Some("*") if credentials => "the page reads the response (expose_headers \"*\" exposes nothing with credentials)".to_owned(),
                Some(list) => format!("the page reads the response and the headers {list}"),
                None => "the page reads the response (only CORS-safelisted response headers)".to_owned(),
            }
        })
    };
    let mut what = format!("an actual {method} request");
    if needs_preflight(method, &requested) || method == "OPTIONS" {
        what.push_str(" (a browser would preflight it first: explain that with --request-method)");
    }
    BrowserConclusion {
        what,
        without_credentials: judge(false),
        with_credentials: judge(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cors_check_follows_fetch() {
        let o = "https://a.com";
        assert!(cors_check(&h(&[("access-control-allow-origin", "*")]), o, false).is_ok());
        assert!(
            cors_check(&h(&[("access-control-allow-origin", "*")]), o, true)
                .unwrap_err()
                .contains("wildcard")
        );
        assert!(
            cors_check(&h(&[("access-control-allow-origin", o)]), o, true)
                .unwrap_err()
                .contains("Credentials")
        );
        assert!(cors_check(
            &h(&[
                ("access-control-allow-origin", o),
                ("access-control-allow-credentials", "true")
            ]),
            o,
            true
        )
        .is_ok());
        assert!(cors_check(
            &h(&[("access-control-allow-origin", "https://a.com/")]),
            o,
            false
        )
        .unwrap_err()
        .contains("not equal"));
        assert!(cors_check(&h(&[]), o, false).unwrap_err().contains("No "));
    }

    #[test]
    fn wildcard_headers_never_cover_authorization() {
        let resp = h(&[
            ("access-control-allow-origin", "*"),
            ("access-control-allow-headers", "*"),
            ("access-control-allow-methods", "*"),
        ]);
        let p = |hs: &[&str]| Preflight {
            origin: "https://a.com",
            method: "PUT",
            headers: hs.iter().map(|s| s.to_string()).collect(),
            private_network: false,
        };
        assert!(preflight_check(200, &resp, &p(&["x-a"]), false).is_ok());
        assert!(preflight_check(200, &resp, &p(&["authorization"]), false)
            .unwrap_err()
            .contains("authorization"));
        assert!(preflight_check(403, &resp, &p(&[]), false)
            .unwrap_err()
            .contains("HTTP ok"));
    }

    #[test]
    fn method_comparison_is_case_sensitive_and_safelist_passes() {
        let resp = h(&[
            ("access-control-allow-origin", "*"),
            ("access-control-allow-methods", "put"),
        ]);
        let p = |m| Preflight {
            origin: "https://a.com",
            method: m,
            headers: vec![],
            private_network: false,
        };
        assert!(preflight_check(200, &resp, &p("PUT"), false).is_err());
        assert!(preflight_check(200, &resp, &p("POST"), false).is_ok());
        assert!(needs_preflight("PUT", &[]) && !needs_preflight("GET", &["accept".into()]));
    }
}
