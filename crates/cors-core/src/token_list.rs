//! The three token lists of a policy: `allow_methods`, `allow_headers`, `expose_headers`.
//! Written as Envoy writes them (a comma-separated string) or as a JSON list; `"*"` alone
//! means "any", which for methods and headers is answered by mirroring the request (the only
//! form that also works with credentials). The header value is rendered once, at configure time.

use crate::fields::{expected, JsonError};
use crate::headers::{is_token, list_items};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenList {
    /// `"*"`.
    Any,
    Listed {
        /// Lower-cased items, for case-insensitive header-name comparison.
        lower: Vec<String>,
        /// The header value, items joined with ", ".
        rendered: String,
    },
}

impl Default for TokenList {
    fn default() -> Self {
        TokenList::Listed {
            lower: Vec::new(),
            rendered: String::new(),
        }
    }
}

impl TokenList {
    pub fn from_json(value: &Value, path: &str) -> Result<Self, JsonError> {
        let items: Vec<(String, String)> = match value {
            Value::String(s) => list_items(s.as_bytes())
                .map(|item| (String::from_utf8_lossy(item).into_owned(), path.to_owned()))
                .collect(),
            Value::Array(list) => list
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok((s.trim().to_owned(), format!("{path}[{i}]"))),
                    other => Err(expected(&format!("{path}[{i}]"), "a string", other)),
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(expected(
                    path,
                    "a comma-separated string or a list of strings",
                    other,
                ))
            }
        };
        if items.iter().any(|(item, _)| item == "*") {
            if items.len() > 1 {
                return Err(JsonError::new(path, "\"*\" must be the only item"));
            }
            return Ok(TokenList::Any);
        }
        for (item, item_path) in &items {
            if !is_token(item.as_bytes()) {
                return Err(JsonError::new(
                    item_path.as_str(),
                    format!("{item:?} is not a valid method or header name"),
                ));
            }
        }
        let rendered = items
            .iter()
            .map(|(item, _)| item.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let lower = items
            .into_iter()
            .map(|(item, _)| item.to_ascii_lowercase())
            .collect();
        Ok(TokenList::Listed { lower, rendered })
    }

    /// True when `name` is allowed: by `*`, or listed (compared case-insensitively when
    /// `ignore_case`, as header names are; methods compare exactly, as the Fetch standard does).
    pub fn allows(&self, name: &[u8], ignore_case: bool) -> bool {
        match self {
            TokenList::Any => true,
            TokenList::Listed { lower, rendered } => {
                if ignore_case {
                    lower
                        .iter()
                        .any(|item| item.as_bytes().eq_ignore_ascii_case(name))
                } else {
                    list_items(rendered.as_bytes()).any(|item| item == name)
                }
            }
        }
    }

    /// The configured header value; `None` for `*` (mirrored or literal, the caller decides)
    /// and for an empty list.
    pub fn rendered(&self) -> Option<&str> {
        match self {
            TokenList::Listed { rendered, .. } if !rendered.is_empty() => Some(rendered),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_and_list_forms_render_the_same() {
        let a = TokenList::from_json(&json!("GET,POST , PUT"), "m").unwrap();
        let b = TokenList::from_json(&json!(["GET", "POST", "PUT"]), "m").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.rendered(), Some("GET, POST, PUT"));
    }

    #[test]
    fn methods_compare_exactly_headers_ignore_case() {
        let m = TokenList::from_json(&json!("GET, PATCH"), "m").unwrap();
        assert!(m.allows(b"PATCH", false));
        assert!(!m.allows(b"patch", false));
        let h = TokenList::from_json(&json!("X-Custom, Content-Type"), "h").unwrap();
        assert!(h.allows(b"x-custom", true));
        assert!(!h.allows(b"authorization", true));
    }

    #[test]
    fn star_alone_means_any() {
        assert_eq!(
            TokenList::from_json(&json!("*"), "m").unwrap(),
            TokenList::Any
        );
        assert!(TokenList::from_json(&json!("GET, *"), "m")
            .unwrap_err()
            .message
            .contains("only item"));
    }

    #[test]
    fn invalid_names_are_refused_with_their_path() {
        let e = TokenList::from_json(&json!(["GET", "BAD METHOD"]), "routes.a.allow_methods")
            .unwrap_err();
        assert_eq!(e.path, "routes.a.allow_methods[1]");
        let e = TokenList::from_json(&json!(5), "p.allow_headers").unwrap_err();
        assert_eq!(e.to_string(), "p.allow_headers: expected a comma-separated string or a list of strings, found a number");
    }
}
