//! Envoy's `type.matcher.v3.StringMatcher` (`exact`, `prefix`, `suffix`, `contains`,
//! `safe_regex`, with `ignore_case`), as used by `allow_origin_string_match`. Regular
//! expressions are compiled once, anchored at both ends (Envoy's `safe_regex` is a full match).

use crate::fields::{Fields, JsonError};
use regex_lite::{Regex, RegexBuilder};
use serde_json::Value;

#[derive(Debug)]
pub struct StringMatcher {
    kind: Kind,
    ignore_case: bool,
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
    /// Parses one StringMatcher object found at `path`.
    pub fn from_json(value: &Value, path: &str) -> Result<Self, JsonError> {
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
        Ok(StringMatcher { kind, ignore_case })
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
}
