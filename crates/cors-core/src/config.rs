//! The plugin configuration: a default `policy`, per-`virtual_hosts` and per-`routes` policies
//! (`null` turns CORS off there), and the route-metadata namespace. It arrives as JSON text
//! (a `StringValue`, also what Istio sends) or as protobuf `Struct` wire bytes (inline YAML in
//! Envoy 1.40); the two are told apart by content.

use crate::fields::{child, expected, Fields, JsonError};
use crate::policy::Policy;
use crate::structpb;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// `None` in a map: CORS is off there.
pub type PolicyEntry = Option<Arc<Policy>>;

#[derive(Debug, Default)]
pub struct Config {
    pub default: Option<Arc<Policy>>,
    pub virtual_hosts: HashMap<String, PolicyEntry>,
    pub routes: HashMap<String, PolicyEntry>,
    /// `filter_metadata` namespace holding per-route policies; `None` (the default) when
    /// lookups are off: they cost a host call per CORS request.
    pub metadata_namespace: Option<String>,
    /// What the responses to requests without `Origin` get.
    pub without_origin: WithoutOrigin,
    /// Things worth telling the operator at load (ignored runtime keys, useless combinations).
    pub warnings: Vec<String>,
}

/// What the filter does to the responses of requests without `Origin` (`requests_without_origin`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum WithoutOrigin {
    /// The Fetch standard's rule for caches ("CORS protocol and HTTP caches"): a cacheable
    /// response (`GET`, `HEAD`) whose CORS answer depends on `Origin` gets `Vary: Origin`, and
    /// one under a policy allowing any origin without credentials gets its constant answer
    /// (`Access-Control-Allow-Origin: *`), so that a shared cache never hands one request's
    /// answer to another.
    #[default]
    CacheSafe,
    /// Untouched: for deployments that know no shared cache stands in front.
    Pass,
}

/// Which key of the configuration chose the policy for a request (borrowed: selecting
/// allocates nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// The route's own configuration for the filter (`typed_per_filter_config`; the most
    /// specific of route, virtual host and route configuration): native build only.
    PerRoute,
    /// A policy in the route's metadata, under this namespace.
    RouteMetadata(&'a str),
    Route(&'a str),
    VirtualHost(&'a str),
    Default,
}

impl Config {
    /// Parses the bytes Envoy hands to `on_configure`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Config, JsonError> {
        Config::from_value(&decode(bytes)?)
    }

    pub fn from_value(value: &Value) -> Result<Config, JsonError> {
        let mut f = Fields::new(value, "")?;
        let mut warnings = Vec::new();
        let default = match f.optional("policy") {
            Some(v) => Some(Arc::new(Policy::from_json(v, "policy", &mut warnings)?)),
            None => None,
        };
        let virtual_hosts =
            policy_map(f.optional("virtual_hosts"), "virtual_hosts", &mut warnings)?;
        let routes = policy_map(f.optional("routes"), "routes", &mut warnings)?;
        let metadata_namespace = match f.raw("route_metadata_namespace") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(other) => {
                return Err(expected(
                    "route_metadata_namespace",
                    "a non-empty string or null",
                    other,
                ))
            }
        };
        let without_origin = match f.raw("requests_without_origin") {
            None => WithoutOrigin::CacheSafe,
            Some(Value::String(s)) if s == "cache_safe" => WithoutOrigin::CacheSafe,
            Some(Value::String(s)) if s == "pass" => WithoutOrigin::Pass,
            Some(other) => {
                return Err(JsonError::new(
                    "requests_without_origin",
                    format!(
                        "expected \"cache_safe\" or \"pass\", found {}",
                        crate::fields::render(other)
                    ),
                ))
            }
        };
        f.finish()?;
        Ok(Config {
            default,
            virtual_hosts,
            routes,
            metadata_namespace,
            without_origin,
            warnings,
        })
    }

    /// The request's route name is needed only when some policy is keyed by it.
    /// Whether the policy can depend on the route a request takes (`routes`, route metadata):
    /// then a host that can re-match the route judges a preflight by its actual request's.
    pub fn selects_by_route(&self) -> bool {
        self.needs_route_name() || self.metadata_namespace.is_some()
    }

    pub fn needs_route_name(&self) -> bool {
        !self.routes.is_empty()
    }

    pub fn needs_virtual_host_name(&self) -> bool {
        !self.virtual_hosts.is_empty()
    }

    /// Picks the policy for a request from the names Envoy gives (route metadata is looked at
    /// before, by the caller): `routes[route]` if the key exists, else
    /// `virtual_hosts[vhost]` if it exists, else `policy`. `None` inside: CORS is off.
    pub fn select(
        &self,
        route: Option<&str>,
        virtual_host: Option<&str>,
    ) -> Option<(&PolicyEntry, Source<'_>)> {
        if let Some((name, entry)) = route.and_then(|r| self.routes.get_key_value(r)) {
            return Some((entry, Source::Route(name)));
        }
        if let Some((name, entry)) = virtual_host.and_then(|v| self.virtual_hosts.get_key_value(v))
        {
            return Some((entry, Source::VirtualHost(name)));
        }
        self.default
            .as_ref()
            .map(|_| (&self.default, Source::Default))
    }
}

/// A per-route configuration (`typed_per_filter_config` with a `DynamicModuleFilterPerRoute`,
/// native build): the policy of the routes it is attached to, over the filter-level selection.
#[derive(Debug)]
pub enum RouteConfig {
    /// Empty (no `filter_config`, or `{}`, as Envoy Gateway attaches to enable the filter on a
    /// route): the filter-level `routes`, `virtual_hosts` and `policy` decide.
    Inherit,
    /// `null`: CORS is off on these routes; requests pass untouched.
    Off,
    /// A policy in either vocabulary, presets included, exactly as under `policy`.
    Policy(Arc<Policy>),
}

impl RouteConfig {
    /// Parses a per-route `filter_config` (JSON text: Envoy hands a `Struct` over as JSON).
    /// The policy is named `typed_per_filter_config`, where it is written: field paths in errors
    /// and warnings and refusal reasons start there (`typed_per_filter_config.allow_origins[1]`).
    pub fn from_bytes(bytes: &[u8], warnings: &mut Vec<String>) -> Result<RouteConfig, JsonError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(RouteConfig::Inherit);
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            JsonError::new(
                "",
                format!("per-route configuration is not valid JSON: {e}"),
            )
        })?;
        match value {
            Value::Null => Ok(RouteConfig::Off),
            Value::Object(ref fields) if fields.is_empty() => Ok(RouteConfig::Inherit),
            value => Ok(RouteConfig::Policy(Arc::new(Policy::from_json(
                &value,
                "typed_per_filter_config",
                warnings,
            )?))),
        }
    }
}

/// Decodes configuration bytes. JSON text starts, after whitespace, with `{`; a protobuf
/// Struct starts with its first field's tag, 0x0A, which is also a newline: so text that
/// parses as JSON is JSON, and otherwise bytes starting with 0x0A are read as a Struct.
/// Empty bytes are an empty configuration.
pub fn decode(bytes: &[u8]) -> Result<Value, JsonError> {
    let json = || {
        serde_json::from_slice::<Value>(bytes)
            .map_err(|e| JsonError::new("", format!("configuration is not valid JSON: {e}")))
    };
    let structpb = || {
        structpb::decode_struct(bytes).map_err(|e| {
            JsonError::new(
                "",
                format!("configuration is not a valid protobuf Struct: {e}"),
            )
        })
    };
    match (
        bytes.first(),
        bytes.iter().find(|b| !b.is_ascii_whitespace()),
    ) {
        (_, None) => Ok(Value::Object(Default::default())),
        (Some(0x0a), Some(b'{')) => json().or_else(|json_err| structpb().map_err(|_| json_err)),
        (_, Some(b'{')) => json(),
        (Some(0x0a), _) => structpb(),
        _ => Err(JsonError::new(
            "",
            "configuration must be a JSON object (StringValue) or a google.protobuf.Struct",
        )),
    }
}

fn policy_map(
    value: Option<&Value>,
    path: &str,
    warnings: &mut Vec<String>,
) -> Result<HashMap<String, PolicyEntry>, JsonError> {
    let Some(value) = value else {
        return Ok(HashMap::new());
    };
    let map = value
        .as_object()
        .ok_or_else(|| expected(path, "a map from name to policy or null", value))?;
    map.iter()
        .map(|(name, v)| {
            let entry = match v {
                Value::Null => None,
                v => Some(Arc::new(Policy::from_json(
                    v,
                    &child(path, name),
                    warnings,
                )?)),
            };
            Ok((name.clone(), entry))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structpb::encode::encode_struct;
    use serde_json::json;

    fn config(v: Value) -> Config {
        Config::from_value(&v).unwrap()
    }

    #[test]
    fn json_and_struct_encodings_give_the_same_config() {
        let v = json!({"policy": {"allow_origins": ["https://a.com"], "max_age": 60},
                       "routes": {"api": null}});
        let from_json = Config::from_bytes(v.to_string().as_bytes()).unwrap();
        let from_struct = Config::from_bytes(&encode_struct(&v)).unwrap();
        assert_eq!(format!("{from_json:?}"), format!("{from_struct:?}"));
        assert!(Config::from_bytes(b"  \n").unwrap().default.is_none());
    }

    #[test]
    fn selection_prefers_route_then_virtual_host_then_default() {
        let c = config(json!({
            "policy": {"allow_origins": ["https://default.com"]},
            "virtual_hosts": {"vh": {"allow_origins": ["https://vh.com"]}, "vh-off": null},
            "routes": {"r": {"allow_origins": ["https://r.com"]}, "r-off": null},
        }));
        let name = |route, vh| {
            c.select(route, vh)
                .map(|(e, s)| (e.as_ref().map(|p| p.name.clone()), s))
        };
        assert_eq!(
            name(Some("r"), Some("vh")),
            Some((Some("routes.r".into()), Source::Route("r")))
        );
        assert_eq!(
            name(Some("r-off"), Some("vh")),
            Some((None, Source::Route("r-off")))
        );
        assert_eq!(
            name(Some("other"), Some("vh")),
            Some((Some("virtual_hosts.vh".into()), Source::VirtualHost("vh")))
        );
        assert_eq!(
            name(None, Some("vh-off")),
            Some((None, Source::VirtualHost("vh-off")))
        );
        assert_eq!(
            name(None, None),
            Some((Some("policy".into()), Source::Default))
        );
        assert!(config(json!({"routes": {"r": null}}))
            .select(Some("x"), None)
            .is_none());
    }

    #[test]
    fn names_are_looked_up_only_when_maps_exist() {
        let c = config(json!({"policy": {"allow_origins": ["*"]}}));
        assert!(!c.needs_route_name() && !c.needs_virtual_host_name());
        assert_eq!(c.metadata_namespace, None, "route metadata is opt-in");
        let c = config(
            json!({"routes": {}, "virtual_hosts": {"v": null}, "route_metadata_namespace": "cors"}),
        );
        assert!(
            !c.needs_route_name()
                && c.needs_virtual_host_name()
                && c.metadata_namespace.as_deref() == Some("cors")
        );
        assert!(config(json!({"route_metadata_namespace": null}))
            .metadata_namespace
            .is_none());
    }

    #[test]
    fn errors_name_the_field_path() {
        let err = |v: &str| Config::from_bytes(v.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            err(r#"{"routes": {"api": {"allow_origins": ["https://a.com", "app.example.com/path"]}}}"#),
            "routes.api.allow_origins[1]: \"app.example.com/path\" is not an origin (expected scheme://host[:port], \"*\" or \"null\")"
        );
        assert!(err(r#"{"policy": {"allow_origins": ["*"]}"#)
            .starts_with("configuration is not valid JSON"));
        assert!(err(r#"{"polcy": {}}"#).starts_with("polcy: unknown field"));
        assert!(err(r#"{"routes": {"api": "https://a.com"}}"#)
            .starts_with("routes.api: expected an object, found a string"));
        assert!(err(r#"{"routes": []}"#).starts_with("routes: expected a map"));
        assert!(err("[1]").contains("must be a JSON object"));
        assert_eq!(
            err(r#"{"requests_without_origin": "vary"}"#),
            "requests_without_origin: expected \"cache_safe\" or \"pass\", found \"vary\""
        );
    }
}
