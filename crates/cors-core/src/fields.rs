//! Reading the configuration's JSON tree with the path of every value at hand, so that each
//! error names the field (`routes.api.allow_origins[1]`) and what is wrong with it.

use serde_json::{Map, Value};
use std::fmt;

/// A configuration error: the field path and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub path: String,
    pub message: String,
}

impl JsonError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        JsonError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// The path of `key` inside the object at `path`.
pub fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The name of a JSON value's type, for "expected X, found Y" messages.
/// A value as JSON text for an error message ("found -5", "found \"TEN\""), cut with "…" past
/// 120 characters so that a huge value cannot flood the log.
pub fn render(value: &Value) -> String {
    let text = value.to_string();
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(119).collect();
    if chars.nth(1).is_some() {
        format!("{head}…")
    } else {
        text
    }
}

/// The items of the list of strings at `path`, each with its own path (`path[i]`), in order: the
/// error names the list when it is not one (`expected` says it should be `what`), or, when the
/// caller reaches it, the item that is not a string.
pub fn string_items<'a>(
    list: &'a Value,
    path: &'a str,
    what: &str,
) -> Result<impl Iterator<Item = Result<(String, &'a str), JsonError>> + 'a, JsonError> {
    let items = list.as_array().ok_or_else(|| expected(path, what, list))?;
    Ok(items.iter().enumerate().map(move |(i, item)| {
        let item_path = format!("{path}[{i}]");
        match item.as_str() {
            Some(s) => Ok((item_path, s)),
            None => Err(expected(&item_path, "a string", item)),
        }
    }))
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

pub fn expected(path: &str, what: &str, found: &Value) -> JsonError {
    JsonError::new(path, format!("expected {what}, found {}", type_name(found)))
}

/// The fields of one JSON object. Each getter marks its key as known; `finish` then refuses
/// any key nobody asked for, so an unknown (misspelt) field is an error, never ignored.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
    known: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    pub fn new(value: &'a Value, path: &str) -> Result<Self, JsonError> {
        match value {
            Value::Object(map) => Ok(Fields {
                map,
                path: path.to_owned(),
                known: Vec::new(),
            }),
            other => Err(expected(path, "an object", other)),
        }
    }

    pub fn path_of(&self, key: &str) -> String {
        child(&self.path, key)
    }

    /// The value of `key`; `null` counts as absent.
    pub fn optional(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The value of `key` exactly as written, `null` included (for maps where null means "off").
    pub fn raw(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.push(key);
        self.map.get(key)
    }

    pub fn optional_bool(&mut self, key: &'static str) -> Result<Option<bool>, JsonError> {
        match self.optional(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(expected(&self.path_of(key), "true or false", other)),
        }
    }

    pub fn optional_str(&mut self, key: &'static str) -> Result<Option<&'a str>, JsonError> {
        match self.optional(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(expected(&self.path_of(key), "a string", other)),
        }
    }

    pub fn required_str(&mut self, key: &'static str) -> Result<&'a str, JsonError> {
        self.optional_str(key)?
            .ok_or_else(|| JsonError::new(self.path_of(key), "missing (required)"))
    }

    pub fn optional_object(&mut self, key: &'static str) -> Result<Option<&'a Value>, JsonError> {
        match self.optional(key) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v)),
            Some(other) => Err(expected(&self.path_of(key), "an object", other)),
        }
    }

    /// Refuses every key that no getter asked for.
    pub fn finish(self) -> Result<(), JsonError> {
        match self.map.keys().find(|k| !self.known.contains(&k.as_str())) {
            None => Ok(()),
            Some(unknown) => Err(JsonError::new(
                child(&self.path, unknown),
                format!(
                    "unknown field (known fields here: {})",
                    self.known.join(", ")
                ),
            )),
        }
    }
}
