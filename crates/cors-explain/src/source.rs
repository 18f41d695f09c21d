//! Reading the plugin configuration: a JSON file (what a `StringValue` or Istio's
//! `pluginConfig` carries), or an Envoy config (YAML or JSON) from which our Wasm filter's
//! `configuration` is taken in either encoding, together with the inline route table of its
//! listener (route names, virtual hosts, route metadata, and `--path` matching).

use crate::routes::RouteTable;
use cors_core::config::Config;
use cors_core::fields::JsonError;
use cors_core::structpb::encode::encode_struct;
use serde_json::Value;
use std::fmt;

const WASM_FILTER_TYPE: &str = "envoy.extensions.filters.http.wasm.v3.Wasm";

#[derive(Debug)]
pub enum LoadError {
    /// The filter would refuse this configuration at load; the text is the filter's log line.
    Config(JsonError),
    /// Anything else: unreadable file, no Wasm filter in an Envoy config, ambiguity.
    Input(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Config(e) => write!(f, "invalid plugin configuration: {e}"),
            LoadError::Input(s) => write!(f, "{s}"),
        }
    }
}

impl From<JsonError> for LoadError {
    fn from(e: JsonError) -> Self {
        LoadError::Config(e)
    }
}

pub struct Loaded {
    pub config: Config,
    /// The listener's inline route table, when the input was an Envoy config.
    pub routes: Option<RouteTable>,
    /// Where the configuration came from, for people.
    pub source: String,
}

/// Loads `path`. `listener` picks one listener of an Envoy config holding several filters.
pub fn load(path: &str, listener: Option<&str>) -> Result<Loaded, LoadError> {
    let bytes =
        std::fs::read(path).map_err(|e| LoadError::Input(format!("cannot read {path}: {e}")))?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if path.ends_with(".json") || first == Some(&b'{') {
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            if is_envoy_document(&v) {
                return from_envoy(&v, listener, path);
            }
        }
        // A plugin configuration: exactly the bytes a StringValue would hand the filter.
        return Ok(Loaded {
            config: Config::from_bytes(&bytes)?,
            routes: None,
            source: format!("plugin configuration {path} (JSON)"),
        });
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| LoadError::Input(format!("{path}: not UTF-8 text")))?;
    let v: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| LoadError::Input(format!("{path}: not valid YAML: {e}")))?;
    if is_envoy_document(&v) {
        return from_envoy(&v, listener, path);
    }
    // A plugin configuration written in YAML: read as Envoy reads an inline Struct.
    Ok(Loaded {
        config: struct_config(&v)?,
        routes: None,
        source: format!("plugin configuration {path} (YAML, read as a Struct)"),
    })
}

fn is_envoy_document(v: &Value) -> bool {
    v.get("static_resources").is_some()
        || v.get("kind").and_then(Value::as_str) == Some("WasmPlugin")
        || !wasm_filters(v).is_empty()
}

/// Every Wasm HTTP filter config (the `config` of a `...wasm.v3.Wasm`) under `v`, also inside
/// wrappers such as `ExtensionWithMatcher`.
fn wasm_filters(v: &Value) -> Vec<&Value> {
    let mut found = Vec::new();
    walk(v, &mut |o| {
        let is_wasm = o
            .get("@type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.ends_with(WASM_FILTER_TYPE));
        if is_wasm {
            found.push(o.get("config").unwrap_or(&Value::Null));
            false
        } else {
            true
        }
    });
    found
}

/// Calls `visit` on every object under `v` (depth first); `visit` returns whether to descend.
fn walk<'a>(v: &'a Value, visit: &mut dyn FnMut(&'a Value) -> bool) {
    match v {
        Value::Object(map) if visit(v) => {
            for child in map.values() {
                walk(child, visit);
            }
        }
        Value::Array(items) => {
            for child in items {
                walk(child, visit);
            }
        }
        _ => {}
    }
}

struct Candidate<'a> {
    listener: String,
    config: &'a Value,
    route_config: Option<&'a Value>,
    /// The connection manager ignores ports in `Host` when matching domains.
    ignore_port: bool,
}

fn from_envoy(doc: &Value, listener: Option<&str>, path: &str) -> Result<Loaded, LoadError> {
    if doc.get("kind").and_then(Value::as_str) == Some("WasmPlugin") {
        // Istio turns pluginConfig into a JSON StringValue before Envoy sees it.
        let plugin = doc
            .get("spec")
            .and_then(|s| s.get("pluginConfig"))
            .cloned()
            .unwrap_or(Value::Object(Default::default()));
        let text = serde_json::to_vec(&plugin)
            .map_err(|e| LoadError::Input(format!("{path}: spec.pluginConfig: {e}")))?;
        return Ok(Loaded {
            config: Config::from_bytes(&text)?,
            routes: None,
            source: format!("{path}: Istio WasmPlugin spec.pluginConfig (JSON)"),
        });
    }
    let mut candidates: Vec<Candidate> = Vec::new();
    let listeners = doc
        .get("static_resources")
        .and_then(|s| s.get("listeners"))
        .and_then(Value::as_array);
    for l in listeners.into_iter().flatten() {
        let name = l
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        walk(l, &mut |o| {
            let Some(filters) = o.get("http_filters") else {
                return true;
            };
            for config in wasm_filters(filters) {
                candidates.push(Candidate {
                    listener: name.clone(),
                    config,
                    route_config: o.get("route_config"),
                    ignore_port: ["strip_any_host_port", "ignore_port_in_host_matching"]
                        .iter()
                        .any(|k| o.get(k).and_then(Value::as_bool) == Some(true)),
                });
            }
            false
        });
    }
    if candidates.is_empty() {
        // A fragment (an http_filters list, one filter): no listener, no routes.
        for config in wasm_filters(doc) {
            candidates.push(Candidate {
                listener: String::new(),
                config,
                route_config: None,
                ignore_port: false,
            });
        }
    }
    let ours: Vec<&Candidate> = candidates.iter().filter(|c| is_ours(c.config)).collect();
    let mut chosen: Vec<&Candidate> = if ours.is_empty() {
        candidates.iter().collect()
    } else {
        ours
    };
    if let Some(want) = listener {
        chosen.retain(|c| c.listener == want);
    }
    // The same filter and routes in several filter chains or listeners (one API served over
    // HTTP and HTTPS) answer alike: they count once, under the first listener's name.
    let mut distinct: Vec<&Candidate> = Vec::new();
    for c in chosen {
        let seen = distinct.iter().any(|d| {
            d.config.get("configuration") == c.config.get("configuration")
                && d.route_config == c.route_config
                && d.ignore_port == c.ignore_port
        });
        if !seen {
            distinct.push(c);
        }
    }
    let candidate = match distinct.as_slice() {
        [one] => *one,
        [] => {
            return Err(LoadError::Input(match listener {
                Some(l) => format!("{path}: no Wasm filter in listener {l:?}"),
                None => format!("{path}: no Wasm HTTP filter ({WASM_FILTER_TYPE}) found"),
            }))
        }
        many => {
            let names: Vec<String> = many.iter().map(|c| format!("{:?}", c.listener)).collect();
            return Err(LoadError::Input(format!(
                "{path}: several Wasm filters (listeners {}): choose one with --listener NAME",
                names.join(", ")
            )));
        }
    };
    let (config, encoding) = plugin_config(candidate.config.get("configuration"))?;
    let routes = match candidate.route_config {
        Some(rc) => Some(
            RouteTable::from_envoy(rc)
                .map_err(LoadError::Input)?
                .with_ignore_port(candidate.ignore_port),
        ),
        None => None,
    };
    let filter_name = candidate
        .config
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut source = format!("{path}: Wasm filter {filter_name:?}");
    if !candidate.listener.is_empty() {
        source.push_str(&format!(" of listener {:?}", candidate.listener));
    }
    source.push_str(&format!(", configuration as {encoding}"));
    Ok(Loaded {
        config,
        routes,
        source,
    })
}

/// Our filter: root_id `cors` or a module named `cors_filter.wasm`.
fn is_ours(config: &Value) -> bool {
    let root_id = config.get("root_id").and_then(Value::as_str);
    let file = config
        .get("vm_config")
        .and_then(|v| v.get("code"))
        .and_then(|c| c.get("local"))
        .and_then(|l| l.get("filename"))
        .and_then(Value::as_str);
    root_id == Some("cors") || file.is_some_and(|f| f.ends_with("cors_filter.wasm"))
}

/// The filter's view of the `configuration` Any: a Struct arrives as wire bytes (numbers are
/// doubles), a StringValue / BytesValue as its raw contents, nothing as empty bytes.
fn plugin_config(any: Option<&Value>) -> Result<(Config, &'static str), LoadError> {
    let Some(any) = any else {
        return Ok((Config::from_bytes(b"")?, "nothing (empty)"));
    };
    let type_url = any.get("@type").and_then(Value::as_str).unwrap_or("");
    let value = any.get("value");
    if type_url.ends_with("google.protobuf.Struct") {
        let v = value.cloned().unwrap_or(Value::Object(Default::default()));
        if !v.is_object() {
            return Err(LoadError::Input(
                "configuration: a google.protobuf.Struct value must be a map".into(),
            ));
        }
        Ok((struct_config(&v)?, "Struct (inline YAML)"))
    } else if type_url.ends_with("google.protobuf.StringValue") {
        let text = match value {
            None => "",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => {
                return Err(LoadError::Input(
                    "configuration: a google.protobuf.StringValue value must be a string".into(),
                ))
            }
        };
        Ok((
            Config::from_bytes(text.as_bytes())?,
            "StringValue (JSON text)",
        ))
    } else if type_url.ends_with("google.protobuf.BytesValue") {
        let text = value.and_then(Value::as_str).unwrap_or("");
        let bytes = base64_decode(text).ok_or_else(|| {
            LoadError::Input("configuration: BytesValue value is not base64".into())
        })?;
        Ok((Config::from_bytes(&bytes)?, "BytesValue"))
    } else {
        Err(LoadError::Input(format!(
            "configuration: unsupported @type {type_url:?} (expected google.protobuf.Struct, StringValue or BytesValue)"
        )))
    }
}

/// Decodes a BytesValue's base64 text as protobuf's JSON mapping does: the standard or the
/// URL-safe alphabet, padding optional.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    use base64::{alphabet, Engine};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    [alphabet::STANDARD, alphabet::URL_SAFE]
        .iter()
        .find_map(|a| GeneralPurpose::new(a, config).decode(&compact).ok())
}

/// What Envoy hands the filter for an inline Struct: its protobuf encoding.
fn struct_config(v: &Value) -> Result<Config, LoadError> {
    Ok(Config::from_bytes(&encode_struct(v))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        assert_eq!(base64_decode("eyJhIjoxfQ==").unwrap(), b"{\"a\":1}");
        assert!(base64_decode("*").is_none());
    }

    #[test]
    fn base64_takes_both_alphabets_with_or_without_padding() {
        assert_eq!(base64_decode("eyJhIjoxfQ").unwrap(), b"{\"a\":1}");
        assert_eq!(base64_decode("-_8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(base64_decode("+/8=").unwrap(), [0xfb, 0xff]);
    }

    #[test]
    fn a_struct_config_is_read_from_its_protobuf_encoding() {
        let c =
            struct_config(&serde_json::json!({"policy": {"allow_origins": ["*"], "max_age": 600}}))
                .unwrap();
        assert_eq!(c.default.unwrap().max_age.as_deref(), Some("600"));
    }
}
