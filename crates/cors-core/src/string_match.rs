//! Envoy's `type.matcher.v3.StringMatcher` (`exact`, `prefix`, `suffix`, `contains`,
//! `safe_regex`, with `ignore_case`), as used by `allow_origin_string_match`. Regular
//! expressions are compiled once, anchored at both ends (Envoy's `safe_regex` is a full match).
//!
//! `from_json` reads a matcher of origins: one that no serialized origin can match (a path or
//! trailing slash, upper case without `ignore_case`, a default port written out) is refused,
//! as `allow_origins` refuses such entries; Envoy accepts it and never matches (an intentional
//! difference, docs/migrating-from-envoy-cors.md). One that matches more than it seems to (a
//! `prefix` that is a whole origin, a `suffix` without a leading dot) carries a warning.
//! `any_from_json` reads a matcher of any other string.

use crate::fields::{Fields, JsonError};
use regex_lite::{Regex, RegexBuilder};
use serde_json::Value;

#[derive(Debug)]
pub struct StringMatcher {
    kind: Kind,
    ignore_case: bool,
    /// What an origin matcher matches beyond what it seems to (see `from_json`).
    pub warning: Option<String>,
}

#[derive(Debug)]
enum Kind {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(Regex),
}

/// Bounds on a configured regular expression, so that a config cannot make the filter
/// compile (or hold) a huge automaton.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
const REGEX_NEST_LIMIT: u32 = 64;

impl StringMatcher {
    /// Parses one matcher of origins found at `path` (`allow_origin_string_match[i]`), refusing
    /// one that no origin can match.
    pub fn from_json(value: &Value, path: &str) -> Result<Self, JsonError> {
        let mut matcher = StringMatcher::any_from_json(value, path)?;
        let (key, text) = match &matcher.kind {
            Kind::Exact(s) => ("exact", s),
            Kind::Prefix(s) => ("prefix", s),
            Kind::Suffix(s) => ("suffix", s),
            Kind::Contains(s) => ("contains", s),
            Kind::Regex(_) => return Ok(matcher),
        };
        let at = format!("{path}.{key}");
        // A matcher that matches "*" means any origin (Envoy tests each one against "*").
        if matcher.matches("*") {
            return Ok(matcher);
        }
        if let Some(why) = never_an_origin(&matcher.kind, matcher.ignore_case) {
            return Err(JsonError::new(
                at,
                format!("{text:?} never matches an origin ({why}); Envoy accepts it and never matches it"),
            ));
        }
        matcher.warning = wider_than_meant(&matcher.kind).map(|w| format!("{at}: {w}"));
        Ok(matcher)
    }

    /// Parses one StringMatcher object found at `path`, for any string (a `:method`).
    pub fn any_from_json(value: &Value, path: &str) -> Result<Self, JsonError> {
        let mut fields = Fields::new(value, path)?;
        let ignore_case = fields.optional_bool("ignore_case")?.unwrap_or(false);
        let mut kinds = Vec::new();
        for key in ["exact", "prefix", "suffix", "contains"] {
            if let Some(s) = fields.optional_str(key)? {
                let s = s.to_owned();
                kinds.push(match key {
                    "exact" => Kind::Exact(s),
                    "prefix" => Kind::Prefix(s),
                    "suffix" => Kind::Suffix(s),
                    _ => Kind::Contains(s),
                });
            }
        }
        if let Some(regex) = fields.optional_object("safe_regex")? {
            let regex_path = format!("{path}.safe_regex");
            let mut regex_fields = Fields::new(regex, &regex_path)?;
            // `google_re2` (deprecated in Envoy) may be present and empty; it selects nothing.
            regex_fields.optional_object("google_re2")?;
            let pattern = regex_fields.required_str("regex")?;
            let compiled = RegexBuilder::new(&format!("^(?:{pattern})$"))
                .size_limit(REGEX_SIZE_LIMIT)
                .nest_limit(REGEX_NEST_LIMIT)
                .build()
                .map_err(|e| {
                    JsonError::new(
                        format!("{regex_path}.regex"),
                        format!("invalid regular expression {pattern:?}: {e}"),
                    )
                })?;
            regex_fields.finish()?;
            kinds.push(Kind::Regex(compiled));
        }
        fields.finish()?;
        let kind = match kinds.len() {
            1 => kinds.remove(0),
            0 => {
                return Err(JsonError::new(
                    path,
                    "a string matcher needs one of exact, prefix, suffix, contains, safe_regex",
                ))
            }
            _ => return Err(JsonError::new(
                path,
                "a string matcher takes only one of exact, prefix, suffix, contains, safe_regex",
            )),
        };
        if let Kind::Prefix(s) | Kind::Suffix(s) | Kind::Contains(s) = &kind {
            if s.is_empty() {
                return Err(JsonError::new(path, "an empty prefix, suffix or contains matches everything; use \"*\" if that is meant"));
            }
        }
        Ok(StringMatcher {
            kind,
            ignore_case,
            warning: None,
        })
    }

    pub fn is_exact_null(&self) -> bool {
        matches!(&self.kind, Kind::Exact(s) if s == "null")
    }

    pub fn matches(&self, input: &str) -> bool {
        let (input, ic) = (input.as_bytes(), self.ignore_case);
        let eq = |a: &[u8], b: &[u8]| {
            if ic {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        match &self.kind {
            Kind::Exact(s) => eq(input, s.as_bytes()),
            Kind::Prefix(s) => input
                .get(..s.len())
                .is_some_and(|head| eq(head, s.as_bytes())),
            Kind::Suffix(s) => input
                .len()
                .checked_sub(s.len())
                .and_then(|start| input.get(start..))
                .is_some_and(|tail| eq(tail, s.as_bytes())),
            Kind::Contains(s) => input.windows(s.len()).any(|w| eq(w, s.as_bytes())),
            // `ignore_case` has no effect on safe_regex in Envoy either; use `(?i)`.
            Kind::Regex(re) => std::str::from_utf8(input).is_ok_and(|s| re.is_match(s)),
        }
    }
}

/// Why no serialized origin (`scheme://host[:port]`, lower case, default port omitted, or
/// `null`) can match this matcher, if none can. `exact: "*"` means any origin (Envoy's rule).
fn never_an_origin(kind: &Kind, ignore_case: bool) -> Option<String> {
    let (text, exact) = match kind {
        Kind::Exact(s) if s.eq_ignore_ascii_case("null") && (ignore_case || s == "null") => {
            return None
        }
        Kind::Exact(s) => (s, true),
        Kind::Prefix(s) => (s, false),
        Kind::Suffix(s) | Kind::Contains(s) => (s, false),
        Kind::Regex(_) => return None,
    };
    if !ignore_case && text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some("upper case without ignore_case: browsers send origins in lower case".into());
    }
    if text.contains(['?', '#']) {
        return Some("an origin has no path, query or fragment".into());
    }
    if !slashes_fit_an_origin(kind, text) {
        return Some(if text.ends_with('/') {
            "trailing '/': an origin has no path".into()
        } else {
            "an origin has no path".into()
        });
    }
    if text.contains('*') {
        return Some(
            "'*' is not a wildcard here and no origin contains it; allow_origins takes patterns \
             such as https://*.example.com"
                .into(),
        );
    }
    if exact {
        return match crate::origin::serialize(text) {
            Err(why) => Some(why),
            Ok(serialized) if serialized.eq_ignore_ascii_case(text) => None,
            Ok(serialized) => Some(format!(
                "a default port written out: browsers omit it and send {serialized:?}"
            )),
        };
    }
    None
}

/// Whether the slashes of `text` can be those of an origin's `://`: one run of at most two,
/// preceded by `:` (or, in a `suffix` or `contains`, at the start: the tail of `://`).
fn slashes_fit_an_origin(kind: &Kind, text: &str) -> bool {
    let Some(first) = text.find('/') else {
        return true;
    };
    let run = text
        .get(first..)
        .map_or(0, |t| t.len() - t.trim_start_matches('/').len());
    let rest = text.get(first + run..).unwrap_or("");
    let before = text.get(..first).unwrap_or("");
    let anchored = before.ends_with(':')
        || (before.is_empty() && matches!(kind, Kind::Suffix(_) | Kind::Contains(_)));
    run <= 2 && !rest.contains('/') && anchored && !(rest.is_empty() && before.is_empty())
}

/// What a matcher that can match origins matches beyond what it seems to, when that is surely
/// not meant: a `prefix` that is a whole origin also matches hosts that start with it; a
/// `suffix` naming a domain without its leading dot also matches hosts that end with it.
fn wider_than_meant(kind: &Kind) -> Option<String> {
    match kind {
        Kind::Prefix(s) if crate::origin::serialize(s).is_ok() && !s.ends_with(':') => {
            Some(format!(
                "the prefix {s:?} also matches {:?} (any host that starts with it): use exact, or \
             allow_origins with its port pattern",
                format!("{s}.evil.example")
            ))
        }
        Kind::Suffix(s)
            if !s.starts_with(['.', '/', ':']) && s.contains('.') && !s.contains("://") =>
        {
            Some(format!(
                "the suffix {s:?} also matches {:?}: start it with \".\" for subdomains, or \
                 use exact",
                format!("https://evil{s}")
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> StringMatcher {
        StringMatcher::from_json(&v, "m").unwrap()
    }

    #[test]
    fn each_kind_matches_as_envoy_does() {
        assert!(m(json!({"exact": "https://a.com"})).matches("https://a.com"));
        assert!(!m(json!({"exact": "https://a.com"})).matches("https://A.com"));
        assert!(m(json!({"exact": "https://a.com", "ignore_case": true})).matches("https://A.com"));
        assert!(m(json!({"prefix": "https://a"})).matches("https://ab.com"));
        assert!(m(json!({"suffix": ".a.com"})).matches("https://x.a.com"));
        assert!(m(json!({"suffix": ".A.com", "ignore_case": true})).matches("https://x.a.com"));
        assert!(m(json!({"contains": "corp"})).matches("https://x.corp.net"));
        assert!(!m(json!({"contains": "corp"})).matches("https://x.net"));
    }

    #[test]
    fn safe_regex_is_a_full_match() {
        let r = m(json!({"safe_regex": {"google_re2": {}, "regex": "https://[a-z]+\\.a\\.com"}}));
        assert!(r.matches("https://x.a.com"));
        assert!(!r.matches("https://x.a.com.evil.net"));
        assert!(!r.matches("evil https://x.a.com"));
    }

    #[test]
    fn bad_matchers_are_refused_with_their_path() {
        let err = |v: Value| {
            StringMatcher::from_json(&v, "m[0]")
                .unwrap_err()
                .to_string()
        };
        assert!(err(json!({"safe_regex": {"regex": "("}}))
            .starts_with("m[0].safe_regex.regex: invalid regular expression"));
        assert!(err(json!({})).contains("needs one of"));
        assert!(err(json!({"exact": "a", "prefix": "b"})).contains("only one of"));
        assert!(err(json!({"exact": 1})).starts_with("m[0].exact: expected a string"));
        assert!(err(json!({"regex": "a"})).starts_with("m[0].regex: unknown field"));
    }

    #[test]
    fn origin_matchers_that_never_match_are_refused_with_the_reason() {
        let err = |v: Value| {
            StringMatcher::from_json(&v, "p.allow_origin_string_match[0]")
                .unwrap_err()
                .to_string()
        };
        let e = err(json!({"exact": "https://app.example.com/"}));
        assert!(e.starts_with("p.allow_origin_string_match[0].exact: \"https://app.example.com/\" never matches an origin (trailing '/'"), "{e}");
        assert!(err(json!({"exact": "https://App.Example.com"}))
            .contains("upper case without ignore_case"));
        assert!(err(json!({"exact": "https://a.example.com:443"})).contains("default port"));
        assert!(err(json!({"exact": "https://a.example.com/path"})).contains("no path"));
        assert!(err(json!({"prefix": "https://a.example.com/"})).contains("trailing '/'"));
        assert!(err(json!({"suffix": ".Example.com"})).contains("upper case"));
        assert!(err(json!({"contains": "example.com/api"})).contains("no path"));
        assert!(err(json!({"exact": "https://*.example.com"})).contains("not a wildcard"));
    }

    #[test]
    fn origin_matchers_that_can_match_load() {
        for v in [
            json!({"exact": "https://App.Example.com", "ignore_case": true}),
            json!({"exact": "*"}),
            json!({"exact": "null"}),
            json!({"exact": "http://localhost:3000"}),
            json!({"prefix": "http://localhost:"}),
            json!({"prefix": "https://"}),
            json!({"suffix": ".example.com"}),
            json!({"suffix": "://example.com"}),
            json!({"contains": "partner"}),
            json!({"safe_regex": {"regex": "https://[A-Z]+/"}}),
        ] {
            let m = StringMatcher::from_json(&v, "m").unwrap();
            assert!(m.warning.is_none(), "{v}: {:?}", m.warning);
        }
    }

    #[test]
    fn origin_matchers_wider_than_meant_warn() {
        let w = |v: Value| StringMatcher::from_json(&v, "m").unwrap().warning.unwrap();
        assert!(w(json!({"prefix": "https://app.example.com"}))
            .contains("https://app.example.com.evil.example"));
        assert!(w(json!({"suffix": "example.com"})).contains("https://evilexample.com"));
    }

    #[test]
    fn any_string_matchers_keep_upper_case() {
        assert!(
            StringMatcher::any_from_json(&json!({"exact": "GET"}), ":method")
                .unwrap()
                .matches("GET")
        );
    }
}
