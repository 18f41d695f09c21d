//! The plugin configuration: a default `policy`, per-`virtual_hosts` and per-`routes` policies
//! (`null` turns CORS off there), and the route-metadata namespace. It arrives as JSON text
//! (a `StringValue`, also what Istio sends) or as protobuf `Struct` wire bytes (inline YAML in
//! Envoy 1.40); the two are told apart by content.

use crate::fields::{child, expected, Fields, JsonError};
use crate::policy::Policy;
use crate::structpb;
use crate::token_list::TokenList;
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
    /// `stat_prefix`: put before the counter names, so that two filter instances (two
    /// listeners) count apart.
    pub stat_prefix: Option<String>,
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
            Some(v) => Some(parse_policy(v, "policy", &mut warnings)?),
            None => None,
        };
        let virtual_hosts =
            policy_map(f.optional("virtual_hosts"), "virtual_hosts", &mut warnings)?;
        let routes = policy_map(f.optional("routes"), "routes", &mut warnings)?;
        if let Some(default) = &default {
            for (map, entries) in [("virtual_hosts", &virtual_hosts), ("routes", &routes)] {
                for (name, policy) in entries {
                    if let Some(w) = policy.as_ref().and_then(|p| narrower(p, default)) {
                        warnings.push(format!("{}: {w}", child(map, name)));
                    }
                }
            }
        }
        let stat_prefix = match f.raw("stat_prefix") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if is_stat_prefix(s) => Some(s.clone()),
            Some(Value::String(s)) => {
                return Err(JsonError::new(
                    "stat_prefix",
                    format!(
                        "{s:?} is not a counter prefix: letters, digits, '_' and '-', in parts \
                         separated by single '.', at most 64 characters"
                    ),
                ))
            }
            Some(other) => return Err(expected("stat_prefix", "a string or null", other)),
        };
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
            stat_prefix,
        })
    }

    /// The counters' names in `stats` index order, after `stat_prefix` when there is one
    /// (`api.cors.preflight.allowed`); each host adds its own prefix in front (`wasmcustom.`).
    pub fn counter_names(&self) -> impl Iterator<Item = String> + '_ {
        crate::stats::names().map(|name| match &self.stat_prefix {
            Some(prefix) => format!("{prefix}.{name}"),
            None => name,
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
            value => Ok(RouteConfig::Policy(parse_policy(
                &value,
                "typed_per_filter_config",
                warnings,
            )?)),
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

/// A policy, with the warnings of its origin matchers (`AllowOrigin::warnings`).
fn parse_policy(
    v: &Value,
    path: &str,
    warnings: &mut Vec<String>,
) -> Result<Arc<Policy>, JsonError> {
    let mut policy = Policy::from_json(v, path, warnings)?;
    warnings.append(&mut policy.origins.warnings);
    Ok(Arc::new(policy))
}

/// A policy under `routes` or `virtual_hosts` that allows origins but neither a method nor a
/// header, while the default `policy` allows some: a policy applies whole (no field-by-field
/// merge), so it is usually one written to change only the origins.
fn narrower(policy: &Policy, default: &Policy) -> Option<String> {
    let allows_nothing_more =
        |p: &Policy| p.methods == TokenList::default() && p.headers == TokenList::default();
    (!policy.origins.is_empty() && allows_nothing_more(policy) && !allows_nothing_more(default))
        .then(|| {
            "allows origins but no method beyond GET, HEAD and POST and no request header, \
             while `policy` allows some: a policy applies whole (fields are not merged with \
             `policy`); repeat the fields it needs"
                .to_owned()
        })
}

/// `stat_prefix`: parts of letters, digits, `_` and `-`, separated by single dots.
fn is_stat_prefix(s: &str) -> bool {
    s.len() <= 64
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
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
                v => Some(parse_policy(v, &child(path, name), warnings)?),
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
    fn stat_prefix_goes_before_every_counter_name() {
        let c = config(json!({"stat_prefix": "public-api.v1"}));
        let names: Vec<String> = c.counter_names().collect();
        assert_eq!(names.len(), crate::stats::COUNTERS);
        assert!(names.iter().all(|n| n.starts_with("public-api.v1.cors.")));
        assert_eq!(
            config(json!({})).counter_names().next().as_deref(),
            Some("cors.preflight.allowed")
        );
        for bad in [
            json!("a..b"),
            json!(".a"),
            json!("a b"),
            json!(""),
            json!(3),
        ] {
            let e = Config::from_value(&json!({"stat_prefix": bad}))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("stat_prefix: "), "{e}");
        }
    }

    #[test]
    fn a_per_key_policy_narrower_than_the_default_warns_that_policies_do_not_merge() {
        let c = config(json!({
            "policy": {"allow_origins": ["https://a.com"], "allow_methods": "PUT", "allow_headers": "x-a"},
            "virtual_hosts": {"partners": {"allow_origins": ["https://p.com"]}},
            "routes": {"full": {"allow_origins": ["https://p.com"], "allow_methods": "PUT"}},
        }));
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].starts_with("virtual_hosts.partners: allows origins but no method"));
    }

    #[test]
    fn origin_matcher_warnings_reach_the_config() {
        let c =
            config(json!({"policy": {"allow_origin_string_match": [{"prefix": "https://a.com"}]}}));
        assert!(
            c.warnings
                .iter()
                .any(|w| w.starts_with("policy.allow_origin_string_match[0].prefix: ")),
            "{:?}",
            c.warnings
        );
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
