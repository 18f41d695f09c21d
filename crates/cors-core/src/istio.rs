//! What Istio's `corsPolicy` means, read from Istio's source (istio/istio at
//! 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c): `TranslateCORSPolicy` in
//! `pilot/pkg/networking/core/route/route.go` turns it into Envoy's `CorsPolicy`, and
//! `validateCORSPolicy` in `pkg/config/validation/validation.go` refuses what never reaches Envoy.
//!
//! - `allowOrigins`: `{exact | prefix | regex}` each become a `StringMatcher` (`regex`: a
//!   `safe_regex`, a full match); the deprecated `allowOrigin` (strings) is read only without
//!   `allowOrigins`, each string an `exact` match;
//! - the lists are joined with `,` (no space);
//! - `maxAge`: a duration, whole seconds only;
//! - `unmatchedPreflights: IGNORE` answers a preflight from a refused origin at the proxy;
//!   unset or `FORWARD` forwards it (`forward_not_matching_preflights`);
//! - methods: only those Istio's validation accepts.

use crate::fields::{expected, string_items, Fields, JsonError};
use crate::origin::AllowOrigin;
use crate::string_match::StringMatcher;
use crate::token_list::TokenList;
use serde_json::{json, Value};

/// `supportedCORSMethods` in Istio's validation.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*",
];

/// Reads `allowOrigins` (or, without it, `allowOrigin`) into `origins`; `warnings` gets a note
/// when both are written, since Istio ignores `allowOrigin` then.
pub fn read_origins(
    f: &mut Fields,
    origins: &mut AllowOrigin,
    warnings: &mut Vec<String>,
) -> Result<(), JsonError> {
    let deprecated = f.optional("allowOrigin");
    if let Some(list) = f.optional("allowOrigins") {
        let list_path = f.path_of("allowOrigins");
        if deprecated.is_some() {
            warnings.push(format!(
                "{}: ignored because allowOrigins is set (as Istio does)",
                f.path_of("allowOrigin")
            ));
        }
        let items = list
            .as_array()
            .ok_or_else(|| expected(&list_path, "a list of {exact | prefix | regex}", list))?;
        for (i, item) in items.iter().enumerate() {
            origins.add_string_matcher(string_match(item, &format!("{list_path}[{i}]"))?);
        }
    } else if let Some(list) = deprecated {
        let list_path = f.path_of("allowOrigin");
        for item in string_items(list, &list_path, "a list of origins")? {
            let (item_path, s) = item?;
            // `StringToExactMatch`: the string is the whole matcher, so errors name the item.
            let matcher = StringMatcher::from_json(&json!({ "exact": s }), &item_path)
                .map_err(|e| JsonError::new(item_path.clone(), e.message))?;
            origins.add_string_matcher(matcher);
        }
    }
    Ok(())
}

/// One Istio `StringMatch` of origins: exactly one of `exact`, `prefix`, `regex`, not empty.
fn string_match(item: &Value, path: &str) -> Result<StringMatcher, JsonError> {
    let mut f = Fields::new(item, path)?;
    let mut kinds = Vec::new();
    for key in ["exact", "prefix", "regex"] {
        if let Some(s) = f.optional_str(key)? {
            kinds.push((key, s));
        }
    }
    f.finish()?;
    let [(key, text)] = kinds[..] else {
        return Err(JsonError::new(
            path,
            "expected exactly one of exact, prefix, regex (Istio's StringMatch)",
        ));
    };
    let at = format!("{path}.{key}");
    if text.is_empty() {
        // Istio's validation: "'' is not a valid match type for CORS allow origins".
        return Err(JsonError::new(at, "empty: Istio refuses an empty match"));
    }
    let envoy = match key {
        "regex" => json!({ "safe_regex": { "regex": text } }),
        _ => json!({ key: text }),
    };
    // Envoy's matcher with Envoy's key names in its errors: name Istio's field instead.
    StringMatcher::from_json(&envoy, path).map_err(|e| JsonError::new(at, e.message))
}

/// Refuses a method Istio's validation refuses (`"PUTT" is not a supported HTTP method`).
pub fn check_methods(list: &Value, path: &str) -> Result<(), JsonError> {
    let Some(items) = list.as_array() else {
        return Ok(());
    };
    for (i, item) in items.iter().enumerate() {
        if let Some(m) = item.as_str().filter(|m| !METHODS.contains(m)) {
            return Err(JsonError::new(
                format!("{path}[{i}]"),
                format!(
                    "{m:?} is not a method Istio accepts (one of {})",
                    METHODS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// A list rendered as Istio renders it for Envoy: joined with `,`, no space.
pub fn joined(list: TokenList) -> TokenList {
    match list {
        TokenList::Listed { lower, rendered } => TokenList::Listed {
            lower,
            // Items are tokens: they hold neither `,` nor a space.
            rendered: rendered.replace(", ", ","),
        },
        any => any,
    }
}

/// `unmatchedPreflights`: whether a preflight from a refused origin is forwarded.
pub fn forward_unmatched(f: &mut Fields) -> Result<bool, JsonError> {
    match f.optional_str("unmatchedPreflights")? {
        None | Some("FORWARD") | Some("UNSPECIFIED") => Ok(true),
        Some("IGNORE") => Ok(false),
        Some(other) => Err(JsonError::new(
            f.path_of("unmatchedPreflights"),
            format!("expected FORWARD or IGNORE, found {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn origins(v: Value) -> Result<(AllowOrigin, Vec<String>), JsonError> {
        let mut f = Fields::new(&v, "p")?;
        let mut o = AllowOrigin::default();
        let mut w = Vec::new();
        read_origins(&mut f, &mut o, &mut w)?;
        Ok((o, w))
    }

    #[test]
    fn string_matches_become_envoy_matchers() {
        let (o, _) = origins(json!({"allowOrigins": [
            {"exact": "https://a.com"}, {"prefix": "https://b"}, {"regex": "https://[a-z]+\\.c\\.com"}]}))
        .unwrap();
        for allowed in ["https://a.com", "https://b.org", "https://x.c.com"] {
            assert!(o.matches(allowed, false).is_some(), "{allowed}");
        }
        assert!(
            o.matches("https://x.c.com.evil", false).is_none(),
            "regex is a full match"
        );
    }

    #[test]
    fn deprecated_allow_origin_is_exact_and_ignored_beside_allow_origins() {
        let (o, w) = origins(json!({"allowOrigin": ["https://a.com"]})).unwrap();
        assert!(o.matches("https://a.com", false).is_some() && w.is_empty());
        let (o, w) = origins(
            json!({"allowOrigin": ["https://a.com"], "allowOrigins": [{"exact": "https://b.com"}]}),
        )
        .unwrap();
        assert!(o.matches("https://a.com", false).is_none());
        assert_eq!(
            w,
            ["p.allowOrigin: ignored because allowOrigins is set (as Istio does)"]
        );
    }

    #[test]
    fn errors_name_istio_fields() {
        let err = |v| origins(v).unwrap_err();
        assert_eq!(
            err(json!({"allowOrigins": [{"regex": "("}]})).path,
            "p.allowOrigins[0].regex"
        );
        assert_eq!(
            err(json!({"allowOrigins": [{"exact": ""}]})).path,
            "p.allowOrigins[0].exact"
        );
        assert_eq!(
            err(json!({"allowOrigins": [{"exact": "https://a.com/"}]})).path,
            "p.allowOrigins[0].exact"
        );
        assert_eq!(err(json!({"allowOrigins": [{}]})).path, "p.allowOrigins[0]");
        assert_eq!(
            err(json!({"allowOrigins": [{"suffix": ".a.com"}]})).path,
            "p.allowOrigins[0].suffix"
        );
        assert_eq!(
            err(json!({"allowOrigin": ["a.com"]})).path,
            "p.allowOrigin[0]"
        );
        let e = check_methods(&json!(["GET", "PUTT"]), "p.allowMethods").unwrap_err();
        assert_eq!(e.path, "p.allowMethods[1]");
    }

    #[test]
    fn lists_join_without_space() {
        let l = joined(TokenList::from_json(&json!(["POST", "GET"]), "p").unwrap());
        assert_eq!(l.rendered(), Some("POST,GET"));
    }
}
