//! The inline route table of an Envoy listener: virtual host and route names (which the filter
//! reads as `xds.virtual_host_name` / `xds.route_name`), route metadata, the native build's
//! per-route configurations (`typed_per_filter_config`), and the subset of Envoy's request
//! matching that can be reproduced exactly (domains; `prefix`, `path`, `path_separated_prefix`,
//! `safe_regex` with `case_sensitive`; `headers` matchers on `:method`, as method-split routes
//! and the Gateway API's method matches are written). A route using any other match field stops
//! `--path` with an error instead of a guess. `locate` turns the command line into a `Location`.

use crate::input::Input;
use crate::source::LoadError;
use cors_core::config::RouteConfig;
use cors_core::route_metadata::{self, MetadataPolicy};
use cors_core::string_match::StringMatcher;
use cors_core::structpb::encode::encode_metadata;
use serde_json::{Map, Value};

/// Reads one `typed_per_filter_config` entry of our filter (the value under the filter's name)
/// found at `at` (e.g. `route "a" of virtual host "b"`), as Envoy hands it to the filter at load.
pub type ReadRouteConfig<'r> = dyn FnMut(&Value, &str) -> Result<RouteConfig, LoadError> + 'r;

pub struct RouteTable {
    vhosts: Vec<VirtualHost>,
    ignore_port: bool,
    /// The route configuration's own per-route configuration (the least specific).
    route_config: Option<PerRoute>,
}

/// A per-route configuration of the filter (native build) and where it is attached.
#[derive(Debug)]
pub struct PerRoute {
    pub config: RouteConfig,
    /// `route "a" of virtual host "b"`, `virtual host "b"` or `the route configuration`.
    pub at: String,
}

pub struct VirtualHost {
    pub name: String,
    domains: Vec<String>,
    routes: Vec<Route>,
    route_config: Option<PerRoute>,
    /// Its `typed_per_filter_config` (every filter's, for the filters before ours).
    per_filter: Option<Map<String, Value>>,
}

pub struct Route {
    /// `None` for a route without `name` (the filter then reads no route name).
    pub name: Option<String>,
    matcher: Result<RouteMatch, String>,
    /// `metadata.filter_metadata`.
    pub filter_metadata: Option<Map<String, Value>>,
    route_config: Option<PerRoute>,
    per_filter: Option<Map<String, Value>>,
}

/// A route's `match`: the path, and what its `:method` header matchers ask (all must hold).
/// jwt_authn's rules use the same message.
pub struct RouteMatch {
    path: PathMatch,
    /// `(matcher, invert_match)`.
    methods: Vec<(StringMatcher, bool)>,
}

impl RouteMatch {
    pub fn matches(&self, path: &str, method: &str) -> bool {
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
    /// Reads an inline `route_config` (of an `HttpConnectionManager`). With `per_route` (the
    /// filter's name in `http_filters` and a reader: native build), also the filter's
    /// `typed_per_filter_config` entries, each read as Envoy reads it at load.
    pub fn from_envoy(
        route_config: &Value,
        mut per_route: Option<(&str, &mut ReadRouteConfig)>,
    ) -> Result<RouteTable, LoadError> {
        let mut own = |v: &Value, at: &str| -> Result<Option<PerRoute>, LoadError> {
            let Some((filter, read)) = per_route.as_mut() else {
                return Ok(None);
            };
            match v
                .get("typed_per_filter_config")
                .and_then(|t| t.get(*filter))
            {
                Some(entry) => Ok(Some(PerRoute {
                    config: read(entry, at)?,
                    at: at.to_owned(),
                })),
                None => Ok(None),
            }
        };
        let table_config = own(route_config, "the route configuration")?;
        let mut vhosts = Vec::new();
        let list = route_config.get("virtual_hosts").and_then(Value::as_array);
        for vh in list.into_iter().flatten() {
            let name = vh.get("name").and_then(Value::as_str).unwrap_or("");
            let vhost_config = own(vh, &format!("virtual host {name:?}"))?;
            let domains = vh
                .get("domains")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect();
            let mut routes = Vec::new();
            let list = vh.get("routes").and_then(Value::as_array);
            for (i, r) in list.into_iter().flatten().enumerate() {
                let mut route = Route::from_envoy(r, name, i);
                route.route_config =
                    own(r, &format!("{} of virtual host {name:?}", route.label(i)))?;
                routes.push(route);
            }
            vhosts.push(VirtualHost {
                name: name.to_owned(),
                domains,
                routes,
                route_config: vhost_config,
                per_filter: per_filter(vh),
            });
        }
        Ok(RouteTable {
            vhosts,
            ignore_port: false,
            route_config: table_config,
        })
    }

    /// Whether any route, virtual host or the route configuration carries a per-route
    /// configuration of the filter.
    pub fn has_route_configs(&self) -> bool {
        self.route_config.is_some()
            || self.vhosts.iter().any(|v| {
                v.route_config.is_some() || v.routes.iter().any(|r| r.route_config.is_some())
            })
    }

    /// What Envoy's `get_most_specific_route_config` returns for a request on `route` of
    /// `vhost`: the route's own entry, else its virtual host's, else the route configuration's.
    /// A request that matches no route has none.
    fn route_config<'t>(
        &'t self,
        vhost: &'t VirtualHost,
        route: &'t Route,
    ) -> Option<&'t PerRoute> {
        route
            .route_config
            .as_ref()
            .or(vhost.route_config.as_ref())
            .or(self.route_config.as_ref())
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
                    errors.push(format!("{} of virtual host {:?}: {e}", r.label(i), vh.name));
                }
            }
        }
        errors
    }

    /// Keys of `routes` and `virtual_hosts` that name no route or virtual host of this route
    /// table: their policies never apply. The filter cannot see the route table at load, so
    /// only `--check` can tell. With the closest existing name.
    pub fn unknown_names(&self, config: &cors_core::config::Config) -> Vec<String> {
        let routes: Vec<&str> = self
            .vhosts
            .iter()
            .flat_map(|v| v.routes.iter().filter_map(|r| r.name.as_deref()))
            .collect();
        let vhosts: Vec<&str> = self.vhosts.iter().map(|v| v.name.as_str()).collect();
        let mut found = Vec::new();
        for (field, what, keys, names) in [
            ("routes", "route", &config.routes, &routes),
            (
                "virtual_hosts",
                "virtual host",
                &config.virtual_hosts,
                &vhosts,
            ),
        ] {
            let mut unknown: Vec<&String> = keys
                .keys()
                .filter(|k| !names.contains(&k.as_str()))
                .collect();
            unknown.sort();
            for key in unknown {
                let closest = names
                    .iter()
                    .min_by_key(|n| edit_distance(key, n))
                    .map_or(format!("it has no {what} names"), |n| {
                        format!("the closest is {n:?}")
                    });
                found.push(format!(
                    "{field}[{key:?}]: no {what} of this name in the route table ({closest}): \
                     its policy never applies"
                ));
            }
        }
        found
    }

    fn vhost(&self, name: &str) -> Option<&VirtualHost> {
        self.vhosts.iter().find(|v| v.name == name)
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
        let filter_metadata = r
            .get("metadata")
            .and_then(|m| m.get("filter_metadata"))
            .and_then(Value::as_object)
            .cloned();
        let mut route = Route {
            name,
            matcher: Err(String::new()),
            filter_metadata,
            route_config: None,
            per_filter: per_filter(r),
        };
        let label = route.label(index);
        route.matcher = RouteMatch::from_envoy(r.get("match"))
            .map_err(|e| format!("{label} of virtual host {vhost:?}: {e}; name the route with --route instead of --path"));
        route
    }

    /// `route "name"`, or `route #index` for a route without a name.
    fn label(&self, index: usize) -> String {
        match &self.name {
            Some(n) => format!("route {n:?}"),
            None => format!("route #{index}"),
        }
    }
}

impl RouteMatch {
    pub fn from_envoy(m: Option<&Value>) -> Result<RouteMatch, String> {
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

fn per_filter(v: &Value) -> Option<Map<String, Value>> {
    v.get("typed_per_filter_config")
        .and_then(Value::as_object)
        .cloned()
}

/// The `typed_per_filter_config` maps that apply on `route` of `vhost`, most specific first.
fn per_filter_maps<'t>(
    vhost: &'t VirtualHost,
    route: Option<&'t Route>,
) -> Vec<&'t Map<String, Value>> {
    route
        .and_then(|r| r.per_filter.as_ref())
        .into_iter()
        .chain(vhost.per_filter.as_ref())
        .collect()
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
    StringMatcher::any_from_json(&string_match, ":method")
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

/// Where Envoy sends the request: the names the filter reads and what the route carries.
#[derive(Debug, Default)]
pub struct Location<'t> {
    pub route: Option<String>,
    pub vhost: Option<String>,
    /// The route's `filter_metadata`, when the Envoy config shows the route.
    pub metadata: Option<&'t Map<String, Value>>,
    /// Whether the route table was consulted at all (else metadata is unknown).
    pub metadata_known: bool,
    /// The most specific per-route configuration of the filter (native build).
    pub route_config: Option<&'t PerRoute>,
    /// How the route was found, for people.
    pub how: Option<String>,
    /// Every filter's `typed_per_filter_config` on the route and its virtual host (most
    /// specific first), when the route is known: for the filters placed before ours.
    pub per_filter: Option<Vec<&'t Map<String, Value>>>,
}

/// Where a request and, for a preflight matched by `--path`, its actual request go.
pub struct Located<'t> {
    pub request: Location<'t>,
    pub actual: Option<ActualRoute<'t>>,
    /// What the route table says about the request: no route, a name it does not have.
    pub notes: Vec<String>,
}

/// The route that a preflight's actual request takes (`:method` set to the
/// `Access-Control-Request-Method`), when it is another route than the preflight's own.
pub struct ActualRoute<'t> {
    pub method: String,
    /// The preflight's own route and the actual request's, for people (`route "a"`, `no route`).
    pub preflight_route: String,
    pub actual_route: String,
    pub location: Location<'t>,
}

/// Finds where the request goes: by `--path` (and `--host`) in the route table, or by the
/// names given with `--route` / `--vhost`.
pub fn locate<'t>(input: &Input, routes: Option<&'t RouteTable>) -> Result<Located<'t>, String> {
    let mut notes = Vec::new();
    if let Some(path) = &input.path {
        if input.route.is_some() || input.vhost.is_some() {
            return Err("give either --path (with --host) or --route / --vhost, not both".into());
        }
        let table = routes.ok_or(
            "--path needs an Envoy config whose listener has an inline route_config; \
             with a plugin configuration alone, use --route / --vhost",
        )?;
        let host = input.host.as_deref().unwrap_or("localhost");
        let matched = table.match_request(host, path, input.method())?;
        let request = table.location(matched, host, path, None);
        match matched {
            (None, _) => notes.push(format!(
                "no virtual host matches Host {host:?}: Envoy answers 404 itself"
            )),
            (Some(_), None) => notes.push(
                "no route matches: Envoy answers 404 itself (the filter still decorates that reply)"
                    .into(),
            ),
            (Some(_), Some(_)) => {}
        }
        let actual = match input
            .request_method
            .as_deref()
            .filter(|m| !m.is_empty() && input.method() == "OPTIONS")
        {
            Some(method) => {
                let other = table.match_request(host, path, method)?;
                let same = match (matched.1, other.1) {
                    (Some(a), Some(b)) => std::ptr::eq(a, b),
                    (a, b) => a.is_none() && b.is_none(),
                };
                (!same).then(|| ActualRoute {
                    method: method.to_owned(),
                    preflight_route: route_label(matched.1),
                    actual_route: route_label(other.1),
                    location: table.location(other, host, path, Some(method)),
                })
            }
            None => None,
        };
        return Ok(Located {
            request,
            actual,
            notes,
        });
    }
    let mut request = Location {
        route: input.route.clone(),
        vhost: input.vhost.clone(),
        ..Location::default()
    };
    let Some(table) = routes else {
        return Ok(Located {
            request,
            actual: None,
            notes,
        });
    };
    request.metadata_known = true;
    if let Some(name) = &input.route {
        match table.find_route(name, input.vhost.as_deref())? {
            Some((vh, r)) => {
                if request.vhost.is_none() {
                    request.vhost = Some(vh.name.clone());
                    request.how = Some(format!("route {name:?} is in virtual host {:?}", vh.name));
                }
                request.metadata = r.filter_metadata.as_ref();
                request.route_config = table.route_config(vh, r);
                request.per_filter = Some(per_filter_maps(vh, Some(r)));
            }
            None => notes.push(format!(
                "route {name:?} is not in the Envoy config's route table"
            )),
        }
    } else if let Some(vh) = input.vhost.as_deref().and_then(|v| table.vhost(v)) {
        // Only the virtual host is known: its own entry, else the route configuration's.
        request.route_config = vh.route_config.as_ref().or(table.route_config.as_ref());
    }
    if let Some(vh) = &input.vhost {
        if table.vhost(vh).is_none() {
            notes.push(format!(
                "virtual host {vh:?} is not in the Envoy config's route table"
            ));
        }
    }
    Ok(Located {
        request,
        actual: None,
        notes,
    })
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = i;
        let mut next = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let left = next.last().copied().unwrap_or(0);
            let up = row.get(j + 1).copied().unwrap_or(0);
            let cost = diagonal + usize::from(ca != *cb);
            diagonal = up;
            next.push(cost.min(left + 1).min(up + 1));
        }
        row = next;
    }
    row.last().copied().unwrap_or(0)
}

/// `route "name"`, `an unnamed route` or `no route`: what a request takes, for people.
fn route_label(route: Option<&Route>) -> String {
    match route {
        None => "no route".to_owned(),
        Some(r) => r
            .name
            .as_deref()
            .map_or("an unnamed route".to_owned(), |n| format!("route {n:?}")),
    }
}

impl RouteTable {
    /// The location of a request matched by `match_request`; `method` names a method other than
    /// the request's own (a preflight's actual request).
    fn location<'t>(
        &'t self,
        (vh, route): (Option<&'t VirtualHost>, Option<&'t Route>),
        host: &str,
        path: &str,
        method: Option<&str>,
    ) -> Location<'t> {
        let with = method.map_or(String::new(), |m| format!(" with :method {m}"));
        let how = match (vh, route) {
            (None, _) => format!("Host {host:?} matches no virtual host"),
            (Some(v), None) => format!(
                "Host {host:?} path {path:?}{with}: virtual host {:?}, no route",
                v.name
            ),
            (Some(v), Some(r)) => format!(
                "Host {host:?} path {path:?}{with}: virtual host {:?}, route {}",
                v.name,
                r.name
                    .as_deref()
                    .map_or("(unnamed)".to_owned(), |n| format!("{n:?}"))
            ),
        };
        Location {
            route: route.and_then(|r| r.name.clone()),
            vhost: vh.map(|v| v.name.clone()),
            metadata: route.and_then(|r| r.filter_metadata.as_ref()),
            metadata_known: true,
            route_config: vh.zip(route).and_then(|(v, r)| self.route_config(v, r)),
            how: Some(how),
            per_filter: vh.map(|v| per_filter_maps(v, route)),
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
        ]}), None)
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
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("api", "apii"), 1);
        assert_eq!(edit_distance("partners", "partner"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
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
