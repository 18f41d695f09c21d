//! The inline route table of an Envoy listener: virtual host and route names (which the filter
//! reads as `xds.virtual_host_name` / `xds.route_name`), route metadata, and the subset of
//! Envoy's request matching that can be reproduced exactly (domains; `prefix`, `path`,
//! `path_separated_prefix`, `safe_regex` with `case_sensitive`; `headers` matchers on `:method`,
//! as method-split routes and the Gateway API's method matches are written). A route using any
//! other match field stops `--path` with an error instead of a guess.

use cors_core::route_metadata::{self, MetadataPolicy};
use cors_core::string_match::StringMatcher;
use cors_core::structpb::encode::encode_metadata;
use serde_json::{Map, Value};

pub struct RouteTable {
    vhosts: Vec<VirtualHost>,
    ignore_port: bool,
}

pub struct VirtualHost {
    pub name: String,
    domains: Vec<String>,
    routes: Vec<Route>,
}

pub struct Route {
    /// `None` for a route without `name` (the filter then reads no route name).
    pub name: Option<String>,
    matcher: Result<RouteMatch, String>,
    /// `metadata.filter_metadata`.
    pub filter_metadata: Option<Map<String, Value>>,
}

/// A route's `match`: the path, and what its `:method` header matchers ask (all must hold).
struct RouteMatch {
    path: PathMatch,
    /// `(matcher, invert_match)`.
    methods: Vec<(StringMatcher, bool)>,
}

impl RouteMatch {
    fn matches(&self, path: &str, method: &str) -> bool {
        self.path.matches(path)
            && self
                .methods
                .iter()
                .all(|(m, invert)| m.matches(method) != *invert)
    }
}

enum PathMatch {
    Prefix(String, bool),
    Path(String, bool),
    Separated(String, bool),
    Regex(regex_lite::Regex),
}

impl RouteTable {
    /// Reads an inline `route_config` (of an `HttpConnectionManager`).
    pub fn from_envoy(route_config: &Value) -> Result<RouteTable, String> {
        let mut vhosts = Vec::new();
        let list = route_config.get("virtual_hosts").and_then(Value::as_array);
        for vh in list.into_iter().flatten() {
            let name = vh.get("name").and_then(Value::as_str).unwrap_or("");
            let domains = vh
                .get("domains")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect();
            let routes = vh
                .get("routes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, r)| Route::from_envoy(r, name, i))
                .collect();
            vhosts.push(VirtualHost {
                name: name.to_owned(),
                domains,
                routes,
            });
        }
        Ok(RouteTable {
            vhosts,
            ignore_port: false,
        })
    }

    /// Ports in `Host` are ignored (the connection manager's `strip_any_host_port` or
    /// `ignore_port_in_host_matching`).
    pub fn with_ignore_port(mut self, ignore: bool) -> Self {
        self.ignore_port = ignore;
        self
    }

    /// The route named `name` (in virtual host `vhost` when given) and its virtual host.
    pub fn find_route(
        &self,
        name: &str,
        vhost: Option<&str>,
    ) -> Result<Option<(&VirtualHost, &Route)>, String> {
        let found: Vec<(&VirtualHost, &Route)> = self
            .vhosts
            .iter()
            .filter(|v| vhost.is_none_or(|want| v.name == want))
            .flat_map(|v| v.routes.iter().map(move |r| (v, r)))
            .filter(|(_, r)| r.name.as_deref() == Some(name))
            .collect();
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            [(first, _), rest @ ..] => {
                if rest.iter().all(|(v, _)| v.name == first.name) {
                    Ok(found.first().copied())
                } else {
                    let names: Vec<String> =
                        found.iter().map(|(v, _)| format!("{:?}", v.name)).collect();
                    Err(format!(
                        "route {name:?} is in several virtual hosts ({}): add --vhost NAME",
                        names.join(", ")
                    ))
                }
            }
        }
    }

    /// Route-metadata policies that the filter would find invalid (and then turn CORS off on
    /// their route), as the filter logs them.
    pub fn invalid_metadata_policies(&self, config: &cors_core::config::Config) -> Vec<String> {
        let Some(ns) = &config.metadata_namespace else {
            return Vec::new();
        };
        let mut errors = Vec::new();
        for vh in &self.vhosts {
            for (i, r) in vh.routes.iter().enumerate() {
                let Some(v) = r.filter_metadata.as_ref().and_then(|m| m.get(ns)) else {
                    continue;
                };
                let metadata = encode_metadata(ns, v);
                if let MetadataPolicy::Invalid(e) = route_metadata::decode(&metadata, ns).policy {
                    let label = r
                        .name
                        .as_deref()
                        .map_or(format!("#{i}"), |n| format!("{n:?}"));
                    errors.push(format!("route {label} of virtual host {:?}: {e}", vh.name));
                }
            }
        }
        errors
    }

    pub fn has_vhost(&self, name: &str) -> bool {
        self.vhosts.iter().any(|v| v.name == name)
    }

    /// Envoy's choice for a request to `host` and `path`: the virtual host (by `domains`) and
    /// the first matching route in it.
    pub fn match_request(
        &self,
        host: &str,
        path: &str,
        method: &str,
    ) -> Result<(Option<&VirtualHost>, Option<&Route>), String> {
        if !path.starts_with('/') {
            return Err(format!("--path {path:?} must start with /"));
        }
        if path.contains(['?', '#', '%']) || path.contains("//") || path.contains("/.") {
            return Err(format!(
                "--path {path:?}: give a plain normalized path (no query, fragment, percent-escapes, \
                 // or dot segments) so that it matches as in Envoy; or name the route with --route"
            ));
        }
        let mut host = host.to_ascii_lowercase();
        if self.ignore_port {
            if let Some(i) = host.rfind(':') {
                if !host.get(i..).is_some_and(|port| port.contains(']')) {
                    host.truncate(i);
                }
            }
        }
        let Some(vh) = self.find_vhost(&host) else {
            return Ok((None, None));
        };
        for route in &vh.routes {
            let matcher = route.matcher.as_ref().map_err(Clone::clone)?;
            if matcher.matches(path, method) {
                return Ok((Some(vh), Some(route)));
            }
        }
        Ok((Some(vh), None))
    }

    /// Envoy's order: exact domain, then `*.suffix` (longest first), then `prefix.*` (longest
    /// first), then `*`. A wildcard stands for at least one character.
    fn find_vhost(&self, host: &str) -> Option<&VirtualHost> {
        let with = |pred: &dyn Fn(&str) -> Option<usize>| {
            self.vhosts
                .iter()
                .flat_map(|v| {
                    v.domains
                        .iter()
                        .filter_map(move |d| pred(d).map(|n| (n, v)))
                })
                .max_by_key(|(n, _)| *n)
                .map(|(_, v)| v)
        };
        if let Some(v) = self
            .vhosts
            .iter()
            .find(|v| v.domains.iter().any(|d| d == host))
        {
            return Some(v);
        }
        let suffix = |d: &str| {
            let s = d.strip_prefix('*')?;
            (!s.is_empty() && host.len() > s.len() && host.ends_with(s)).then_some(s.len())
        };
        let prefix = |d: &str| {
            let p = d.strip_suffix('*')?;
            (!p.is_empty() && host.len() > p.len() && host.starts_with(p)).then_some(p.len())
        };
        with(&suffix).or_else(|| with(&prefix)).or_else(|| {
            self.vhosts
                .iter()
                .find(|v| v.domains.iter().any(|d| d == "*"))
        })
    }
}

impl Route {
    fn from_envoy(r: &Value, vhost: &str, index: usize) -> Route {
        let name = r
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        let label = match &name {
            Some(n) => format!("route {n:?}"),
            None => format!("route #{index}"),
        };
        let matcher = RouteMatch::from_envoy(r.get("match"))
            .map_err(|e| format!("{label} of virtual host {vhost:?}: {e}; name the route with --route instead of --path"));
        let filter_metadata = r
            .get("metadata")
            .and_then(|m| m.get("filter_metadata"))
            .and_then(Value::as_object)
            .cloned();
        Route {
            name,
            matcher,
            filter_metadata,
        }
    }
}

impl RouteMatch {
    fn from_envoy(m: Option<&Value>) -> Result<RouteMatch, String> {
        let Some(Value::Object(m)) = m else {
            return Err("no match".into());
        };
        let methods = match m.get("headers") {
            None => Vec::new(),
            Some(Value::Array(headers)) => headers
                .iter()
                .map(method_matcher)
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("headers is not a list".into()),
        };
        Ok(RouteMatch {
            path: PathMatch::from_envoy(m)?,
            methods,
        })
    }
}

/// A `headers` entry that matches `:method` with a `string_match` (or the older `exact_match`);
/// any other header cannot be reproduced from `--path` and `--method`.
fn method_matcher(h: &Value) -> Result<(StringMatcher, bool), String> {
    let name = h.get("name").and_then(Value::as_str).unwrap_or("");
    if name != ":method" {
        return Err(format!(
            "matches on the header {name:?} (headers), which cors-explain cannot reproduce"
        ));
    }
    let invert = h
        .get("invert_match")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let known = ["name", "string_match", "exact_match", "invert_match"];
    if let Some(other) = h
        .as_object()
        .and_then(|o| o.keys().find(|k| !known.contains(&k.as_str())))
    {
        return Err(format!(
            "matches :method with {other:?}, which cors-explain cannot reproduce"
        ));
    }
    let string_match = match (h.get("string_match"), h.get("exact_match")) {
        (Some(m), None) => m.clone(),
        (None, Some(exact)) => serde_json::json!({ "exact": exact }),
        _ => return Err("a :method matcher needs one string_match".into()),
    };
    StringMatcher::from_json(&string_match, ":method")
        .map(|m| (m, invert))
        .map_err(|e| e.to_string())
}

impl PathMatch {
    fn from_envoy(m: &Map<String, Value>) -> Result<PathMatch, String> {
        let case_sensitive = match m.get("case_sensitive") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(Value::Object(o)) => o.get("value").and_then(Value::as_bool).unwrap_or(true),
            Some(_) => return Err("case_sensitive is not a boolean".into()),
        };
        if let Some(other) = m.keys().find(|k| {
            !matches!(
                k.as_str(),
                "prefix"
                    | "path"
                    | "path_separated_prefix"
                    | "safe_regex"
                    | "case_sensitive"
                    | "headers"
            )
        }) {
            return Err(format!(
                "matches on {other:?}, which cors-explain cannot reproduce"
            ));
        }
        let text = |key| m.get(key).and_then(Value::as_str).map(str::to_owned);
        if let Some(p) = text("prefix") {
            Ok(PathMatch::Prefix(p, case_sensitive))
        } else if let Some(p) = text("path") {
            Ok(PathMatch::Path(p, case_sensitive))
        } else if let Some(p) = text("path_separated_prefix") {
            Ok(PathMatch::Separated(p, case_sensitive))
        } else if let Some(re) = m.get("safe_regex").and_then(|r| r.get("regex")) {
            let re = re.as_str().ok_or("safe_regex.regex is not a string")?;
            regex_lite::Regex::new(&format!("^(?:{re})$"))
                .map(PathMatch::Regex)
                .map_err(|e| format!("safe_regex {re:?}: {e}"))
        } else {
            Err("no path match (prefix, path, path_separated_prefix or safe_regex)".into())
        }
    }

    fn matches(&self, path: &str) -> bool {
        let fold = |s: &str, sensitive: bool| {
            if sensitive {
                s.to_owned()
            } else {
                s.to_ascii_lowercase()
            }
        };
        match self {
            PathMatch::Prefix(p, cs) => fold(path, *cs).starts_with(&fold(p, *cs)),
            PathMatch::Path(p, cs) => fold(path, *cs) == fold(p, *cs),
            PathMatch::Separated(p, cs) => {
                let (path, p) = (fold(path, *cs), fold(p, *cs));
                path == p || path.strip_prefix(&p).is_some_and(|r| r.starts_with('/'))
            }
            PathMatch::Regex(re) => re.is_match(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> RouteTable {
        RouteTable::from_envoy(&json!({"virtual_hosts": [
            {"name": "exact", "domains": ["api.example.com"], "routes": [
                {"name": "users", "match": {"path": "/users"}},
                {"name": "sep", "match": {"path_separated_prefix": "/v1"}},
                {"name": "re", "match": {"safe_regex": {"regex": "/items/[0-9]+"}}},
                {"name": "ci", "match": {"prefix": "/CI", "case_sensitive": false}},
                {"match": {"prefix": "/"}},
            ]},
            {"name": "suffix", "domains": ["*.example.com"], "routes": [{"name": "s", "match": {"prefix": "/"}}]},
            {"name": "longer", "domains": ["*.eu.example.com"], "routes": [{"name": "l", "match": {"prefix": "/"}}]},
            {"name": "prefix", "domains": ["www.*"], "routes": [{"name": "p", "match": {"prefix": "/"}}]},
            {"name": "hdr", "domains": ["hdr.test"], "routes": [{"name": "h", "match": {"prefix": "/", "headers": [{"name": "x-a", "present_match": true}]}}]},
            {"name": "split", "domains": ["split.test"], "routes": [
                {"name": "put", "match": {"prefix": "/items", "headers": [{"name": ":method", "string_match": {"exact": "PUT"}}]}},
                {"name": "not-get", "match": {"prefix": "/items", "headers": [{"name": ":method", "exact_match": "GET", "invert_match": true}]}},
                {"name": "get", "match": {"prefix": "/items"}},
            ]},
            {"name": "any", "domains": ["*"], "routes": [{"name": "a", "match": {"prefix": "/x"}}]},
        ]}))
        .unwrap()
    }

    fn names(host: &str, path: &str) -> (Option<String>, Option<String>) {
        let t = table();
        let (v, r) = t.match_request(host, path, "GET").unwrap();
        (v.map(|v| v.name.clone()), r.and_then(|r| r.name.clone()))
    }

    #[test]
    fn domains_follow_envoy_order() {
        assert_eq!(names("API.example.com", "/users").0.unwrap(), "exact");
        assert_eq!(names("a.example.com", "/").0.unwrap(), "suffix");
        assert_eq!(names("a.eu.example.com", "/").0.unwrap(), "longer");
        assert_eq!(names("www.other.org", "/").0.unwrap(), "prefix");
        assert_eq!(names("example.com", "/x").0.unwrap(), "any");
    }

    #[test]
    fn routes_match_in_order() {
        let h = "api.example.com";
        assert_eq!(names(h, "/users").1.as_deref(), Some("users"));
        assert_eq!(names(h, "/users/1").1, None); // the unnamed catch-all
        assert_eq!(names(h, "/v1/x").1.as_deref(), Some("sep"));
        assert_eq!(names(h, "/v1x").1, None);
        assert_eq!(names(h, "/items/42").1.as_deref(), Some("re"));
        assert_eq!(names(h, "/ci/x").1.as_deref(), Some("ci"));
        assert_eq!(names("other", "/y"), (Some("any".into()), None));
    }

    #[test]
    fn method_matchers_split_routes_as_envoy_does() {
        let t = table();
        let route = |method| {
            t.match_request("split.test", "/items/1", method)
                .unwrap()
                .1
                .and_then(|r| r.name.clone())
        };
        assert_eq!(route("PUT").as_deref(), Some("put"));
        assert_eq!(route("OPTIONS").as_deref(), Some("not-get"));
        assert_eq!(route("GET").as_deref(), Some("get"));
    }

    #[test]
    fn inexact_cases_are_refused() {
        let t = table();
        assert!(matches!(t.match_request("hdr.test", "/", "GET"), Err(e) if e.contains("\"x-a\"")));
        assert!(t.match_request("x", "/a?b=1", "GET").is_err());
        assert!(t.find_route("s", None).unwrap().is_some());
        assert!(t.find_route("s", Some("exact")).unwrap().is_none());
    }
}
