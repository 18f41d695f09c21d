//! Reading the plugin configuration: a JSON file (what a `StringValue` or Istio's
//! `pluginConfig` carries), or an Envoy config (YAML or JSON) from which our filter's
//! configuration is taken in either encoding, together with the inline route table of its
//! listener (route names, virtual hosts, route metadata, per-route configurations, and
//! `--path` matching). The filter is the Wasm build (a `Wasm` HTTP filter) or the native build
//! (a `DynamicModuleFilter` of the module `cors`).

use crate::chain::Earlier;
use crate::routes::RouteTable;
use cors_core::config::{Config, RouteConfig};
use cors_core::fields::JsonError;
use cors_core::structpb::encode::encode_struct;
use serde_json::Value;
use std::fmt;

const WASM_FILTER_TYPE: &str = "envoy.extensions.filters.http.wasm.v3.Wasm";
const NATIVE_FILTER_TYPE: &str =
    "envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter";
const NATIVE_PER_ROUTE_TYPE: &str =
    "envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilterPerRoute";
/// The native build's module (`dynamic_module_config.name`: `libcors.so`) and its only filter
/// (`filter_name`).
const NATIVE_MODULE: &str = "cors";
const NATIVE_FILTER_NAME: &str = "cors";

/// Which build of the filter the configuration is for: their rules differ in places (counter
/// names, per-route configuration, re-matching a preflight's route, route metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    Wasm,
    Native,
}

impl Build {
    /// For people: "the Wasm build".
    pub fn name(self) -> &'static str {
        match self {
            Build::Wasm => "the Wasm build",
            Build::Native => "the native build",
        }
    }

    /// In JSON output.
    pub fn key(self) -> &'static str {
        match self {
            Build::Wasm => "wasm",
            Build::Native => "native",
        }
    }

    pub fn other(self) -> Build {
        match self {
            Build::Wasm => Build::Native,
            Build::Native => Build::Wasm,
        }
    }

    /// The prefix Envoy gives the filter's counters (`cors_core::stats`).
    pub fn counter_prefix(self) -> &'static str {
        match self {
            Build::Wasm => "wasmcustom.",
            Build::Native => "dynamicmodulescustom.",
        }
    }
}

#[derive(Debug)]
pub enum LoadError {
    /// The filter would refuse this configuration at load; the text is the filter's log line.
    Config(JsonError),
    /// Envoy would refuse the configuration at load for another reason (a per-route
    /// configuration, a filter name); the text says where and why.
    Refused(String),
    /// Anything else: unreadable file, no CORS filter in an Envoy config, ambiguity.
    Input(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Config(e) => write!(f, "invalid plugin configuration: {e}"),
            LoadError::Refused(s) | LoadError::Input(s) => write!(f, "{s}"),
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
    /// The Wasm build unless the Envoy config's filter is the native one.
    pub build: Build,
    /// The HTTP filters placed before ours in its listener.
    pub chain: Vec<Earlier>,
    /// The listener's name, when the input was an Envoy config.
    pub listener: Option<String>,
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
            build: Build::Wasm,
            chain: Vec::new(),
            listener: None,
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
        build: Build::Wasm,
        chain: Vec::new(),
        listener: None,
    })
}

fn is_envoy_document(v: &Value) -> bool {
    v.get("static_resources").is_some()
        || v.get("apiVersion").is_some()
        || !cors_filters(v).is_empty()
}

/// An Envoy Gateway `EnvoyExtensionPolicy`: our filter is its `spec.wasm` entry (Wasm build)
/// or its `spec.dynamicModule` entry (native build), whose `config` Envoy Gateway hands the
/// filter as JSON text. With several entries, the one named `cors`.
fn from_extension_policy(doc: &Value, path: &str) -> Result<Loaded, LoadError> {
    let spec = doc.get("spec");
    let entries = |key, build| {
        spec.and_then(|s| s.get(key))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(move |e| (key, build, e))
    };
    let all: Vec<(&str, Build, &Value)> = entries("wasm", Build::Wasm)
        .chain(entries("dynamicModule", Build::Native))
        .collect();
    let named =
        |(_, _, e): &&(&str, Build, &Value)| e.get("name").and_then(Value::as_str) == Some("cors");
    let chosen = match all.as_slice() {
        [one] => Some(one),
        many => many.iter().find(named),
    };
    let Some((key, build, entry)) = chosen else {
        return Err(LoadError::Input(format!(
            "{path}: EnvoyExtensionPolicy without a spec.wasm or spec.dynamicModule entry named \
             \"cors\" (found {})",
            all.len()
        )));
    };
    let config = entry.get("config").cloned().unwrap_or(Value::Null);
    let text = match config {
        Value::Null => Vec::new(),
        c => serde_json::to_vec(&c)
            .map_err(|e| LoadError::Input(format!("{path}: spec.{key}.config: {e}")))?,
    };
    Ok(Loaded {
        config: Config::from_bytes(&text)?,
        routes: None,
        source: format!(
            "{path}: Envoy Gateway EnvoyExtensionPolicy spec.{key}[{:?}].config (JSON)",
            entry.get("name").and_then(Value::as_str).unwrap_or("")
        ),
        build: *build,
        chain: Vec::new(),
        listener: None,
    })
}

/// Every filter under `v` that may be ours, also inside wrappers such as
/// `ExtensionWithMatcher`: the `config` of a Wasm HTTP filter, the `typed_config` of a
/// dynamic-module filter.
fn cors_filters(v: &Value) -> Vec<(Build, &Value)> {
    let mut found = Vec::new();
    walk(v, &mut |o| {
        let type_url = o.get("@type").and_then(Value::as_str).unwrap_or("");
        if type_url.ends_with(WASM_FILTER_TYPE) {
            found.push((Build::Wasm, o.get("config").unwrap_or(&Value::Null)));
            false
        } else if type_url.ends_with(NATIVE_FILTER_TYPE) {
            found.push((Build::Native, o));
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
    build: Build,
    /// The Wasm filter's `config`, or the dynamic-module filter's `typed_config`.
    config: &'a Value,
    /// The filter's name in `http_filters` (the key of its `typed_per_filter_config`).
    http_filter: Option<&'a str>,
    route_config: Option<&'a Value>,
    /// The connection manager ignores ports in `Host` when matching domains.
    ignore_port: bool,
    /// The `http_filters` entries placed before ours.
    before: &'a [Value],
}

fn from_envoy(doc: &Value, listener: Option<&str>, path: &str) -> Result<Loaded, LoadError> {
    let kind = doc.get("kind").and_then(Value::as_str);
    if kind == Some("EnvoyExtensionPolicy") {
        return from_extension_policy(doc, path);
    }
    let api = doc.get("apiVersion").and_then(Value::as_str);
    if let Some(api) = api.filter(|_| kind != Some("WasmPlugin")) {
        return Err(LoadError::Input(format!(
            "{path}: a Kubernetes {} ({api}): cors-explain reads an Envoy config, a plugin \
             configuration, an Istio WasmPlugin or an Envoy Gateway EnvoyExtensionPolicy",
            kind.unwrap_or("object")
        )));
    }
    if kind == Some("WasmPlugin") {
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
            build: Build::Wasm,
            chain: Vec::new(),
            listener: None,
        });
    }
    let candidates = candidates(doc);
    let candidate = choose(&candidates, listener, path)?;
    let build = candidate.build;
    let field = match build {
        Build::Wasm => "configuration",
        Build::Native => "filter_config",
    };
    if build == Build::Native {
        let filter_name = candidate.config.get("filter_name").and_then(Value::as_str);
        if filter_name != Some(NATIVE_FILTER_NAME) {
            // The module refuses any other filter, and Envoy then the configuration.
            return Err(LoadError::Refused(format!(
                "{path}: filter_name {:?}: the native module's filter is {NATIVE_FILTER_NAME:?}",
                filter_name.unwrap_or("")
            )));
        }
    }
    let (bytes, encoding) = filter_bytes(payload(candidate), build, field)?;
    let mut config = Config::from_bytes(&bytes)?;
    let routes = match candidate.route_config {
        Some(rc) => Some(
            route_table(rc, build, candidate.http_filter, &mut config.warnings)?
                .with_ignore_port(candidate.ignore_port),
        ),
        None => None,
    };
    let mut source = match build {
        Build::Wasm => {
            let name = candidate.config.get("name").and_then(Value::as_str);
            format!("{path}: Wasm filter {:?}", name.unwrap_or(""))
        }
        Build::Native => format!(
            "{path}: native filter {:?} (dynamic module {NATIVE_MODULE:?})",
            candidate.http_filter.unwrap_or(NATIVE_FILTER_NAME)
        ),
    };
    if !candidate.listener.is_empty() {
        source.push_str(&format!(" of listener {:?}", candidate.listener));
    }
    source.push_str(&format!(", {field} as {encoding}"));
    Ok(Loaded {
        config,
        routes,
        source,
        build,
        chain: Earlier::from_entries(candidate.before),
        listener: Some(candidate.listener.clone()).filter(|l| !l.is_empty()),
    })
}

/// Our filter's possible places: each CORS filter of each listener's connection manager, or of
/// a fragment (an `http_filters` list, one filter) when there is no listener.
fn candidates(doc: &Value) -> Vec<Candidate<'_>> {
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
            let entries = filters
                .as_array()
                .map_or(std::slice::from_ref(filters), Vec::as_slice);
            for (i, entry) in entries.iter().enumerate() {
                for (build, config) in cors_filters(entry) {
                    candidates.push(Candidate {
                        listener: name.clone(),
                        build,
                        config,
                        http_filter: entry.get("name").and_then(Value::as_str),
                        route_config: o.get("route_config"),
                        ignore_port: ["strip_any_host_port", "ignore_port_in_host_matching"]
                            .iter()
                            .any(|k| o.get(k).and_then(Value::as_bool) == Some(true)),
                        before: entries.get(..i).unwrap_or_default(),
                    });
                }
            }
            false
        });
    }
    if candidates.is_empty() {
        // A fragment (an http_filters list, one filter): no listener, no routes.
        for (build, config) in cors_filters(doc) {
            candidates.push(Candidate {
                listener: String::new(),
                build,
                config,
                http_filter: None,
                route_config: None,
                ignore_port: false,
                before: &[],
            });
        }
    }
    candidates
}

/// The one filter to explain: ours (when any is), in `listener` when given.
fn choose<'c, 'a>(
    candidates: &'c [Candidate<'a>],
    listener: Option<&str>,
    path: &str,
) -> Result<&'c Candidate<'a>, LoadError> {
    let ours: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| is_ours(c.build, c.config))
        .collect();
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
            d.build == c.build
                && payload(d) == payload(c)
                && d.http_filter == c.http_filter
                && d.route_config == c.route_config
                && d.ignore_port == c.ignore_port
                && d.before == c.before
        });
        if !seen {
            distinct.push(c);
        }
    }
    match distinct.as_slice() {
        [one] => Ok(*one),
        [] => Err(LoadError::Input(match listener {
            Some(l) => format!("{path}: no CORS filter in listener {l:?}"),
            None => format!(
                "{path}: no CORS filter (a Wasm HTTP filter, {WASM_FILTER_TYPE}, or a \
                     dynamic-module filter, {NATIVE_FILTER_TYPE}) found"
            ),
        })),
        many => {
            let names: Vec<String> = many.iter().map(|c| format!("{:?}", c.listener)).collect();
            Err(LoadError::Input(format!(
                "{path}: several CORS filters (listeners {}): choose one with --listener NAME",
                names.join(", ")
            )))
        }
    }
}

/// The filter's configuration `Any`: the Wasm filter's `configuration`, the dynamic-module
/// filter's `filter_config`.
fn payload<'a>(c: &Candidate<'a>) -> Option<&'a Value> {
    match c.build {
        Build::Wasm => c.config.get("configuration"),
        Build::Native => c.config.get("filter_config"),
    }
}

/// Our filter: a Wasm filter with root_id `cors` or a module named `cors_filter.wasm`; a
/// dynamic-module filter of the module `cors`.
fn is_ours(build: Build, config: &Value) -> bool {
    if build == Build::Native {
        let module = config
            .get("dynamic_module_config")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str);
        return module == Some(NATIVE_MODULE);
    }
    let root_id = config.get("root_id").and_then(Value::as_str);
    let file = config
        .get("vm_config")
        .and_then(|v| v.get("code"))
        .and_then(|c| c.get("local"))
        .and_then(|l| l.get("filename"))
        .and_then(Value::as_str);
    root_id == Some("cors") || file.is_some_and(|f| f.ends_with("cors_filter.wasm"))
}

/// The listener's route table with, for the native build, the filter's per-route
/// configurations read as the module reads them at load (their warnings go to `warnings`).
/// The Wasm filter has none (Envoy refuses them for it).
fn route_table(
    route_config: &Value,
    build: Build,
    http_filter: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<RouteTable, LoadError> {
    let Some(filter) = http_filter.filter(|_| build == Build::Native) else {
        return RouteTable::from_envoy(route_config, None);
    };
    let mut read = |entry: &Value, at: &str| -> Result<RouteConfig, LoadError> {
        let refuse = |why: String| {
            LoadError::Refused(format!(
                "invalid per-route configuration of {at} (entry {filter:?}): {why}"
            ))
        };
        let type_url = entry.get("@type").and_then(Value::as_str).unwrap_or("");
        if !type_url.ends_with(NATIVE_PER_ROUTE_TYPE) {
            return Err(refuse(format!(
                "@type {type_url:?}: expected type.googleapis.com/{NATIVE_PER_ROUTE_TYPE}"
            )));
        }
        let module = entry
            .get("dynamic_module_config")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str);
        if module != Some(NATIVE_MODULE) {
            return Err(refuse(format!(
                "dynamic_module_config.name {:?}: the filter's module is {NATIVE_MODULE:?}",
                module.unwrap_or("")
            )));
        }
        let name = entry.get("filter_name").and_then(Value::as_str);
        if name != Some(NATIVE_FILTER_NAME) {
            return Err(refuse(format!(
                "filter_name {:?}: the native module's filter is {NATIVE_FILTER_NAME:?}",
                name.unwrap_or("")
            )));
        }
        let (bytes, _) = filter_bytes(entry.get("filter_config"), build, "filter_config")
            .map_err(|e| refuse(e.to_string()))?;
        let mut found = Vec::new();
        let config =
            RouteConfig::from_bytes(&bytes, &mut found).map_err(|e| refuse(e.to_string()))?;
        warnings.extend(found.into_iter().map(|w| format!("{at}: {w}")));
        Ok(config)
    };
    RouteTable::from_envoy(route_config, Some((filter, &mut read)))
}

/// The bytes the filter gets for its configuration `Any` (`field`): a StringValue / BytesValue
/// as its raw contents; a Struct as protobuf wire bytes (numbers are doubles) in the Wasm
/// build, as JSON text in the native one; nothing as empty bytes. With the encoding's name.
fn filter_bytes(
    any: Option<&Value>,
    build: Build,
    field: &str,
) -> Result<(Vec<u8>, &'static str), LoadError> {
    let Some(any) = any else {
        return Ok((Vec::new(), "nothing (empty)"));
    };
    let type_url = any.get("@type").and_then(Value::as_str).unwrap_or("");
    let value = any.get("value");
    if type_url.ends_with("google.protobuf.Struct") {
        let v = value.cloned().unwrap_or(Value::Object(Default::default()));
        if !v.is_object() {
            return Err(LoadError::Input(format!(
                "{field}: a google.protobuf.Struct value must be a map"
            )));
        }
        let bytes = match build {
            Build::Wasm => encode_struct(&v),
            Build::Native => {
                serde_json::to_vec(&v).map_err(|e| LoadError::Input(format!("{field}: {e}")))?
            }
        };
        Ok((bytes, "Struct (inline YAML)"))
    } else if type_url.ends_with("google.protobuf.StringValue") {
        let text = match value {
            None => "",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => {
                return Err(LoadError::Input(format!(
                    "{field}: a google.protobuf.StringValue value must be a string"
                )))
            }
        };
        Ok((text.as_bytes().to_vec(), "StringValue (JSON text)"))
    } else if type_url.ends_with("google.protobuf.BytesValue") {
        let text = value.and_then(Value::as_str).unwrap_or("");
        let bytes = base64_decode(text)
            .ok_or_else(|| LoadError::Input(format!("{field}: BytesValue value is not base64")))?;
        Ok((bytes, "BytesValue"))
    } else {
        Err(LoadError::Input(format!(
            "{field}: unsupported @type {type_url:?} (expected google.protobuf.Struct, StringValue or BytesValue)"
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
