//! One request through the filter's steps, in the filter's order (see `filter.rs`): no
//! `Origin` → nothing; policy selection (route metadata, `routes`, `virtual_hosts`, `policy`);
//! `filter_enabled` / `shadow_enabled`; `decision::decide`; then either the filter's own reply
//! or `decision::response_edits` applied to the upstream's response. The CORS logic itself is
//! the library's; this module only gathers inputs and reports.

use super::browser::{self, Preflight};
use super::routes::RouteTable;
use super::source::as_struct;
use cors_filter::config::{Config, Source};
use cors_filter::decision::{self, Action, Denial, Kind, Request};
use cors_filter::headers::list_items;
use cors_filter::policy::Policy;
use cors_filter::stats;
use serde_json::{json, Map, Value};
use std::rc::Rc;

/// The request to explain, and what is known about where Envoy routes it.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub method: Option<String>,
    pub origin: Option<String>,
    pub request_method: Option<String>,
    pub request_headers: Option<String>,
    pub private_network: bool,
    pub route: Option<String>,
    pub vhost: Option<String>,
    pub path: Option<String>,
    pub host: Option<String>,
    /// The upstream's response headers (to see what the filter replaces or removes).
    pub upstream_headers: Vec<(String, String)>,
    pub upstream_status: Option<u32>,
}

impl Input {
    /// `OPTIONS` when an `Access-Control-Request-Method` is given, else `GET`, unless set.
    pub fn method(&self) -> &str {
        match (&self.method, &self.request_method) {
            (Some(m), _) => m,
            (None, Some(_)) => "OPTIONS",
            (None, None) => "GET",
        }
    }

    /// One line of `--requests`: an object with the option names as keys (`request_method`,
    /// `upstream_headers` as `[[name, value], …]` or `{name: value}`, …).
    pub fn from_json(v: &Value) -> Result<Input, String> {
        let obj = v.as_object().ok_or("each request must be a JSON object")?;
        let mut input = Input::default();
        for (key, value) in obj {
            let text = || -> Result<Option<String>, String> {
                match value {
                    Value::Null => Ok(None),
                    Value::String(s) => Ok(Some(s.clone())),
                    _ => Err(format!("{key}: expected a string")),
                }
            };
            match key.as_str() {
                "method" => input.method = text()?,
                "origin" => input.origin = text()?,
                "request_method" => input.request_method = text()?,
                "request_headers" => input.request_headers = text()?,
                "route" => input.route = text()?,
                "vhost" => input.vhost = text()?,
                "path" => input.path = text()?,
                "host" => input.host = text()?,
                "private_network" => {
                    input.private_network = value
                        .as_bool()
                        .ok_or("private_network: expected a boolean")?
                }
                "upstream_status" => {
                    input.upstream_status = Some(
                        value
                            .as_u64()
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or("upstream_status: expected a status code")?,
                    )
                }
                "upstream_headers" => input.upstream_headers = header_list(value)?,
                "id" => {}
                other => return Err(format!("unknown key {other:?}")),
            }
        }
        Ok(input)
    }

    fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("method".into(), json!(self.method()));
        let mut opt = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                o.insert(k.into(), json!(v));
            }
        };
        opt("origin", &self.origin);
        opt("request_method", &self.request_method);
        opt("request_headers", &self.request_headers);
        opt("route", &self.route);
        opt("vhost", &self.vhost);
        opt("path", &self.path);
        opt("host", &self.host);
        if self.private_network {
            o.insert("private_network".into(), json!(true));
        }
        Value::Object(o)
    }
}

fn header_list(v: &Value) -> Result<Vec<(String, String)>, String> {
    let pair = |n: &Value, v: &Value| match (n.as_str(), v.as_str()) {
        (Some(n), Some(v)) => Ok((n.to_ascii_lowercase(), v.to_owned())),
        _ => Err("upstream_headers: names and values must be strings".to_owned()),
    };
    match v {
        Value::Array(items) => items
            .iter()
            .map(|item| match item.as_array().map(Vec::as_slice) {
                Some([n, v]) => pair(n, v),
                _ => Err("upstream_headers: expected [name, value] pairs".to_owned()),
            })
            .collect(),
        Value::Object(map) => map
            .iter()
            .map(|(n, v)| pair(&Value::String(n.clone()), v))
            .collect(),
        _ => Err("upstream_headers: expected a list of [name, value] or an object".into()),
    }
}

/// Where Envoy sends the request: the names the filter reads and the route's metadata.
#[derive(Debug, Default)]
struct Location {
    route: Option<String>,
    vhost: Option<String>,
    /// The route's `filter_metadata`, when the Envoy config shows the route.
    metadata: Option<Map<String, Value>>,
    /// Whether the route table was consulted at all (else metadata is unknown).
    metadata_known: bool,
    how: Option<String>,
}

fn locate(
    input: &Input,
    routes: Option<&RouteTable>,
    notes: &mut Vec<String>,
) -> Result<Location, String> {
    let mut loc = Location {
        route: input.route.clone(),
        vhost: input.vhost.clone(),
        ..Default::default()
    };
    if let Some(path) = &input.path {
        if input.route.is_some() || input.vhost.is_some() {
            return Err("give either --path (with --host) or --route / --vhost, not both".into());
        }
        let table = routes.ok_or(
            "--path needs an Envoy config whose listener has an inline route_config; \
             with a plugin configuration alone, use --route / --vhost",
        )?;
        let host = input.host.as_deref().unwrap_or("localhost");
        let (vh, route) = table.match_request(host, path)?;
        loc.vhost = vh.map(|v| v.name.clone());
        loc.route = route.and_then(|r| r.name.clone());
        loc.metadata = route.and_then(|r| r.filter_metadata.clone());
        loc.metadata_known = true;
        loc.how = Some(match (vh, route) {
            (None, _) => {
                notes.push(format!(
                    "no virtual host matches Host {host:?}: Envoy answers 404 itself"
                ));
                format!("Host {host:?} matches no virtual host")
            }
            (Some(v), None) => {
                notes.push("no route matches: Envoy answers 404 itself (the filter still decorates that reply)".into());
                format!(
                    "Host {host:?} path {path:?}: virtual host {:?}, no route",
                    v.name
                )
            }
            (Some(v), Some(r)) => format!(
                "Host {host:?} path {path:?}: virtual host {:?}, route {}",
                v.name,
                r.name
                    .as_deref()
                    .map_or("(unnamed)".to_owned(), |n| format!("{n:?}"))
            ),
        });
        return Ok(loc);
    }
    let Some(table) = routes else {
        return Ok(loc);
    };
    loc.metadata_known = true;
    if let Some(name) = &input.route {
        match table.find_route(name, input.vhost.as_deref())? {
            Some((vh, r)) => {
                if loc.vhost.is_none() {
                    loc.vhost = Some(vh.name.clone());
                    loc.how = Some(format!("route {name:?} is in virtual host {:?}", vh.name));
                }
                loc.metadata = r.filter_metadata.clone();
            }
            None => notes.push(format!(
                "route {name:?} is not in the Envoy config's route table"
            )),
        }
    }
    if let Some(vh) = &input.vhost {
        if !table.has_vhost(vh) {
            notes.push(format!(
                "virtual host {vh:?} is not in the Envoy config's route table"
            ));
        }
    }
    Ok(loc)
}

enum Selected {
    Policy(Rc<Policy>),
    /// A `null` entry or an invalid route-metadata policy: CORS is off.
    Off,
    /// No entry matched and there is no default `policy`.
    Nothing,
}

struct Selection {
    selected: Selected,
    source: &'static str,
    key: Option<String>,
    why: String,
}

/// The filter's `select_policy`, with the reasons spelled out.
fn select(config: &Config, loc: &Location, notes: &mut Vec<String>) -> Selection {
    if let Some(ns) = &config.metadata_namespace {
        if let Some(value) = loc.metadata.as_ref().and_then(|m| m.get(ns)) {
            let path = format!("route metadata filter_metadata.{ns}");
            let route = loc.route.as_deref().unwrap_or("(unnamed)");
            let mut warnings = Vec::new();
            let parsed = Policy::from_json(&as_struct(value), &path, &mut warnings);
            notes.extend(warnings.into_iter().map(|w| format!("warning: {w}")));
            return match parsed {
                Ok(p) => Selection {
                    selected: Selected::Policy(Rc::new(p)),
                    source: "route_metadata",
                    key: Some(ns.clone()),
                    why: format!(
                        "route {route:?} carries a policy in metadata filter_metadata.{ns}, which comes before routes, virtual_hosts and policy"
                    ),
                },
                Err(e) => Selection {
                    selected: Selected::Off,
                    source: "route_metadata",
                    key: Some(ns.clone()),
                    why: format!("invalid policy, CORS is off on this route: {e}"),
                },
            };
        }
    }
    if config.metadata_namespace.is_some() && !loc.metadata_known && loc.route.is_some() {
        notes.push(
            "route metadata unknown (plugin configuration given alone): a policy in the route's \
             metadata would take precedence; pass the Envoy config to see it"
                .into(),
        );
    }
    // The filter reads the names only when some key uses them; then it is the same lookup.
    let route = loc.route.as_deref().filter(|_| config.needs_route_name());
    let vhost = loc
        .vhost
        .as_deref()
        .filter(|_| config.needs_virtual_host_name());
    let Some((entry, source)) = config.select(route, vhost) else {
        return Selection {
            selected: Selected::Nothing,
            source: "none",
            key: None,
            why: format!(
                "no policy applies: {} and there is no default `policy`",
                unmatched(config, loc)
            ),
        };
    };
    let (source, key, mut why) = match source {
        Source::Route(name) => (
            "route",
            Some(name.to_owned()),
            format!("routes[{name:?}] matches the route name"),
        ),
        Source::VirtualHost(name) => (
            "virtual_host",
            Some(name.to_owned()),
            format!(
                "virtual_hosts[{name:?}] matches the virtual host name{}",
                match (&loc.route, config.needs_route_name()) {
                    (Some(r), true) => format!(" (route {r:?} is not in routes)"),
                    _ => String::new(),
                }
            ),
        ),
        Source::Default => (
            "default",
            None,
            format!("the default `policy`: {}", unmatched(config, loc)),
        ),
    };
    let selected = match entry {
        Some(p) => Selected::Policy(p.clone()),
        None => {
            why.push_str(", whose value is null: CORS is off there");
            Selected::Off
        }
    };
    Selection {
        selected,
        source,
        key,
        why,
    }
}

fn unmatched(config: &Config, loc: &Location) -> String {
    let mut parts = Vec::new();
    if config.needs_route_name() {
        parts.push(match &loc.route {
            Some(r) => format!("route {r:?} is not in routes"),
            None => "no route name given".to_owned(),
        });
    }
    if config.needs_virtual_host_name() {
        parts.push(match &loc.vhost {
            Some(v) => format!("virtual host {v:?} is not in virtual_hosts"),
            None => "no virtual host name given".to_owned(),
        });
    }
    if parts.is_empty() {
        "the configuration has no routes or virtual_hosts".to_owned()
    } else {
        parts.join(", ")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    AnsweredPreflight,
    Refused,
    Forwarded,
    PassedThrough,
}

impl Outcome {
    pub fn key(self) -> &'static str {
        match self {
            Outcome::AnsweredPreflight => "answered_preflight",
            Outcome::Refused => "refused",
            Outcome::Forwarded => "forwarded",
            Outcome::PassedThrough => "passed_through",
        }
    }
}

pub struct Verdict {
    pub what: String,
    pub without_credentials: Result<String, String>,
    pub with_credentials: Result<String, String>,
}

pub struct Explanation {
    pub input: Input,
    pub route: Option<String>,
    pub vhost: Option<String>,
    pub location: Option<String>,
    pub policy: Option<String>,
    pub source: &'static str,
    pub key: Option<String>,
    pub why: String,
    pub kind: Option<Kind>,
    pub outcome: Outcome,
    pub forwarded: bool,
    /// The filter's own reply status; `None` when the upstream answers.
    pub status: Option<u32>,
    pub denial: Option<&'static str>,
    pub reason: Option<String>,
    pub counter: Option<String>,
    pub shadow: bool,
    /// The response headers: the filter's reply, or the upstream's after the filter's edits.
    pub headers: Vec<(String, String)>,
    pub edits: Vec<(String, Option<String>)>,
    pub browser: Option<Verdict>,
    /// For a preflight: the actual request the browser sends next.
    pub then: Option<Box<Explanation>>,
    pub notes: Vec<String>,
}

fn denial_key(d: &Denial) -> &'static str {
    match d {
        Denial::Origin => "origin",
        Denial::Method(_) => "method",
        Denial::Header(_) => "headers",
        Denial::PrivateNetwork => "private_network",
    }
}

pub fn explain(
    config: &Config,
    routes: Option<&RouteTable>,
    input: &Input,
) -> Result<Explanation, String> {
    let mut notes = Vec::new();
    let loc = locate(input, routes, &mut notes)?;
    let selection = select(config, &loc, &mut notes);
    let mut ex = Explanation {
        input: input.clone(),
        route: loc.route.clone(),
        vhost: loc.vhost.clone(),
        location: loc.how.clone(),
        policy: match &selection.selected {
            Selected::Policy(p) => Some(p.name.clone()),
            _ => None,
        },
        source: selection.source,
        key: selection.key.clone(),
        why: selection.why.clone(),
        kind: None,
        outcome: Outcome::PassedThrough,
        forwarded: true,
        status: None,
        denial: None,
        reason: None,
        counter: None,
        shadow: false,
        headers: input.upstream_headers.clone(),
        edits: Vec::new(),
        browser: None,
        then: None,
        notes,
    };
    let Some(origin) = input.origin.as_deref() else {
        ex.notes.push(
            "no Origin header: not a CORS request; the filter does nothing (browsers send Origin on every cross-origin request)"
                .into(),
        );
        return Ok(ex);
    };
    let method = input.method();
    let policy = match &selection.selected {
        Selected::Policy(p) => p.clone(),
        _ => {
            ex.browser = Some(browser_verdict(&ex, origin, method, input));
            return Ok(ex);
        }
    };
    let enforced = policy.filter_enabled.includes(0);
    let shadow = !enforced && policy.shadow_enabled.includes(0);
    if policy.filter_enabled.is_partial() {
        ex.notes.push(format!(
            "{}.filter_enabled is {}%: shown is an enforced request; the others are {}",
            policy.name,
            policy.filter_enabled.percent(),
            if policy.shadow_enabled.includes(0) {
                "evaluated in shadow mode (counted, not enforced)"
            } else {
                "passed through untouched"
            }
        ));
    }
    if !enforced && !shadow {
        ex.notes.push(format!(
            "{}.filter_enabled is 0%: the filter does nothing",
            policy.name
        ));
        ex.browser = Some(browser_verdict(&ex, origin, method, input));
        return Ok(ex);
    }
    let is_options = method == "OPTIONS";
    if !is_options
        && (input.request_method.is_some()
            || input.request_headers.is_some()
            || input.private_network)
    {
        ex.notes
            .push("Access-Control-Request-* headers are only read on OPTIONS requests".into());
    }
    fn only_options(v: &Option<String>, is_options: bool) -> Option<&[u8]> {
        v.as_deref().filter(|_| is_options).map(str::as_bytes)
    }
    let request = Request {
        origin: origin.as_bytes(),
        method: method.as_bytes(),
        request_method: only_options(&input.request_method, is_options),
        request_headers: only_options(&input.request_headers, is_options),
        private_network: is_options && input.private_network,
    };
    let decision = decision::decide(&policy, &request);
    ex.kind = Some(decision.kind);
    ex.denial = decision.denial.as_ref().map(denial_key);
    ex.reason = decision
        .denial
        .map(|d| decision::reason(&policy, &request, d));
    ex.counter = stats::names()
        .nth(stats::index(decision.kind, decision.denial, shadow))
        .map(|n| format!("wasmcustom.{n}"));
    if matches!(decision.denial, Some(Denial::Origin)) {
        ex.notes.extend(
            origin_hints(&policy, origin)
                .into_iter()
                .map(|(why, allowed)| format!("{why}: {allowed} would be allowed")),
        );
    }
    if is_options && decision.kind == Kind::Actual {
        ex.notes.push(
            "OPTIONS without a non-empty Access-Control-Request-Method is not a preflight: browsers never send one \
             as a preflight, and the filter treats it as an actual request (forwarded upstream). \
             Send a real preflight: add Access-Control-Request-Method"
                .into(),
        );
    }
    if shadow {
        ex.shadow = true;
        ex.notes.push(format!(
            "shadow mode ({}.shadow_enabled): counted and logged, not enforced: the request passes through untouched",
            policy.name
        ));
        ex.browser = Some(browser_verdict(&ex, origin, method, input));
        return Ok(ex);
    }
    let refused = decision.denial.is_some();
    match decision.action {
        Action::Reply { status, headers } => {
            ex.forwarded = false;
            ex.status = Some(status);
            ex.headers = headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            ex.outcome = if refused {
                Outcome::Refused
            } else {
                Outcome::AnsweredPreflight
            };
        }
        Action::Forward(plan) => {
            let reason = match (decision.denial, policy.debug_reason_header) {
                (Some(d), true) => Some(decision::reason(&policy, &request, d)),
                _ => None,
            };
            let existing: Vec<(String, Vec<u8>)> = input
                .upstream_headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
                .collect();
            let edits = decision::response_edits(
                plan,
                &policy,
                origin.as_bytes(),
                reason.as_deref(),
                &existing,
            );
            for (name, value) in edits {
                let value = value.map(|v| String::from_utf8_lossy(&v).into_owned());
                ex.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                if let Some(v) = &value {
                    ex.headers.push((name.to_owned(), v.clone()));
                }
                ex.edits.push((name.to_owned(), value));
            }
            ex.outcome = if refused {
                Outcome::Refused
            } else {
                Outcome::Forwarded
            };
        }
    }
    if decision.kind == Kind::Preflight && ex.outcome != Outcome::Refused {
        if let Some(actual_method) = input.request_method.clone() {
            let follow = Input {
                method: Some(actual_method),
                request_method: None,
                request_headers: None,
                private_network: false,
                ..input.clone()
            };
            ex.then = Some(Box::new(explain(config, routes, &follow)?));
        }
    }
    ex.browser = Some(browser_verdict(&ex, origin, method, input));
    Ok(ex)
}

/// Near misses of a refused origin that the policy would allow (using its own matcher): the
/// usual typos of a hand-written `Origin` (browsers never send them).
fn origin_hints(policy: &Policy, origin: &str) -> Vec<(&'static str, String)> {
    let allowed = |o: &str| {
        policy
            .origins
            .matches(o, policy.allow_credentials)
            .is_some()
    };
    let mut hints = Vec::new();
    let Some((scheme, rest)) = origin.split_once("://") else {
        return hints;
    };
    if let Some((authority, _path)) = rest.split_once('/') {
        let bare = format!("{scheme}://{authority}");
        if allowed(&bare) {
            hints.push((
                "an Origin has no path and no trailing slash (browsers send scheme://host[:port])",
                bare,
            ));
        }
        return hints;
    }
    let lower = origin.to_ascii_lowercase();
    if lower != origin && allowed(&lower) {
        hints.push(("browsers send the origin in lower case", lower));
    }
    let default_port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => "",
    };
    if let Some(without) = origin
        .strip_suffix(default_port)
        .filter(|_| !default_port.is_empty())
    {
        if allowed(without) {
            hints.push(("browsers omit the default port", without.to_owned()));
        }
    }
    hints
}

/// The browser's conclusion, with and without credentials.
fn browser_verdict(ex: &Explanation, origin: &str, method: &str, input: &Input) -> Verdict {
    let requested: Vec<String> = input
        .request_headers
        .as_deref()
        .map(|h| {
            list_items(h.as_bytes())
                .map(|i| String::from_utf8_lossy(i).to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let status = ex.status.or(input.upstream_status).unwrap_or(200);
    let preflight = method == "OPTIONS"
        && input
            .request_method
            .as_deref()
            .is_some_and(|m| !m.is_empty());
    if preflight {
        let asked = input.request_method.as_deref().unwrap_or("");
        let p = Preflight {
            origin,
            method: asked,
            headers: requested,
            private_network: input.private_network,
        };
        let judge = |credentials: bool| {
            browser::preflight_check(status, &ex.headers, &p, credentials)?;
            match &ex.then {
                Some(then) => browser::cors_check(&then.headers, origin, credentials)
                    .map(|()| format!("preflight passes; the actual {asked} request passes the CORS check: the page reads the response"))
                    .map_err(|e| format!("preflight passes, but the actual {asked} request is blocked: {e}")),
                None => Ok(format!("preflight passes; the browser sends the actual {asked} request")),
            }
        };
        return Verdict {
            what: format!("a preflight for {asked}, then the actual request"),
            without_credentials: judge(false),
            with_credentials: judge(true),
        };
    }
    let judge = |credentials: bool| {
        browser::cors_check(&ex.headers, origin, credentials).map(|()| {
            let exposed = ex
                .headers
                .iter()
                .find(|(n, _)| n == "access-control-expose-headers")
                .map(|(_, v)| v.as_str());
            match exposed {
                Some("*") if credentials => "the page reads the response (expose_headers \"*\" exposes nothing with credentials)".to_owned(),
                Some(list) => format!("the page reads the response and the headers {list}"),
                None => "the page reads the response (only CORS-safelisted response headers)".to_owned(),
            }
        })
    };
    let mut what = format!("an actual {method} request");
    if browser::needs_preflight(method, &requested) || method == "OPTIONS" {
        what.push_str(" (a browser would preflight it first: explain that with --request-method)");
    }
    Verdict {
        what,
        without_credentials: judge(false),
        with_credentials: judge(true),
    }
}

impl Explanation {
    pub fn to_json(&self, source: &str) -> Value {
        let verdict = |r: &Result<String, String>| match r {
            Ok(m) => json!({"allowed": true, "message": m}),
            Err(m) => json!({"allowed": false, "message": m}),
        };
        json!({
            "config": source,
            "request": self.input.to_json(),
            "route": self.route,
            "virtual_host": self.vhost,
            "location": self.location,
            "policy": self.policy,
            "selected_by": {"source": self.source, "key": self.key, "why": self.why},
            "kind": self.kind.map(|k| match k { Kind::Preflight => "preflight", Kind::Actual => "actual" }),
            "decision": self.outcome.key(),
            "forwarded": self.forwarded,
            "status": self.status,
            "denial": self.denial,
            "reason": self.reason,
            "counter": self.counter,
            "shadow": self.shadow,
            "headers": self.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
            "edits": self.edits.iter().map(|(n, v)| json!({"header": n, "value": v})).collect::<Vec<_>>(),
            "browser": self.browser.as_ref().map(|b| json!({
                "sends": b.what,
                "without_credentials": verdict(&b.without_credentials),
                "with_credentials": verdict(&b.with_credentials),
            })),
            "then": self.then.as_ref().map(|t| t.to_json(source)),
            "notes": self.notes,
        })
    }

    pub fn render(&self, source: &str) -> String {
        let mut out = String::new();
        let mut line = |label: &str, text: &str| {
            out.push_str(&format!("{label:<10}{text}\n"));
        };
        line("Config", source);
        let i = &self.input;
        let mut req = vec![i.method().to_owned()];
        if let Some(p) = &i.path {
            req.push(p.clone());
        }
        for (name, value) in [
            ("Origin", &i.origin),
            ("Access-Control-Request-Method", &i.request_method),
            ("Access-Control-Request-Headers", &i.request_headers),
        ] {
            if let Some(v) = value {
                req.push(format!("{name}: {v}"));
            }
        }
        if i.private_network {
            req.push("Access-Control-Request-Private-Network: true".into());
        }
        line("Request", &req.join("  "));
        let names = format!(
            "route {}, virtual host {}{}",
            self.route
                .as_deref()
                .map_or("(none)".to_owned(), |r| format!("{r:?}")),
            self.vhost
                .as_deref()
                .map_or("(none)".to_owned(), |v| format!("{v:?}")),
            self.location
                .as_deref()
                .map_or(String::new(), |l| format!(" ({l})"))
        );
        line("Where", &names);
        line(
            "Policy",
            &format!(
                "{} (selected: {})",
                self.policy.as_deref().unwrap_or("none"),
                self.why
            ),
        );
        if let Some(kind) = self.kind {
            line(
                "Kind",
                match kind {
                    Kind::Preflight => {
                        "preflight (OPTIONS with Origin and Access-Control-Request-Method)"
                    }
                    Kind::Actual => "actual request",
                },
            );
        }
        let decision = match self.outcome {
            Outcome::AnsweredPreflight => format!(
                "answered preflight: the filter replies {} itself, not forwarded",
                self.status.unwrap_or(200)
            ),
            Outcome::Refused => match self.status {
                Some(s) => format!("REFUSED: the filter replies {s} itself, not forwarded"),
                None => "REFUSED: forwarded upstream; the response carries no CORS permission"
                    .to_owned(),
            },
            Outcome::Forwarded => {
                "forwarded upstream; the filter adds CORS headers to the response".to_owned()
            }
            Outcome::PassedThrough => {
                "passed through: the filter does not touch the request or response".to_owned()
            }
        };
        line("Decision", &decision);
        if let Some(r) = &self.reason {
            line("Reason", r);
        }
        if let Some(c) = &self.counter {
            line("Counter", c);
        }
        let who = match (self.status, self.input.upstream_headers.is_empty()) {
            (Some(s), _) => format!("{s} from the filter"),
            (None, true) => "the upstream's, with these headers from the filter \
                             (add the upstream's own with --upstream-header)"
                .to_owned(),
            (None, false) => "the upstream's (as given), after the filter's edits".to_owned(),
        };
        line("Response", &who);
        for (n, v) in &self.headers {
            out.push_str(&format!("  {n}: {v}\n"));
        }
        if self.headers.is_empty() {
            out.push_str("  (no headers from the filter)\n");
        }
        if let Some(b) = &self.browser {
            out.push_str(&format!("Browser   {}\n", b.what));
            for (label, r) in [
                ("without credentials", &b.without_credentials),
                ("with credentials   ", &b.with_credentials),
            ] {
                match r {
                    Ok(m) => out.push_str(&format!("  {label}: allowed: {m}\n")),
                    Err(m) => out.push_str(&format!("  {label}: BLOCKED: {m}\n")),
                }
            }
        }
        if let Some(then) = &self.then {
            out.push_str(&format!(
                "Then      the actual {}: {}\n",
                then.input.method(),
                then.outcome.key().replace('_', " ")
            ));
            for (n, v) in &then.headers {
                out.push_str(&format!("  {n}: {v}\n"));
            }
        }
        for n in &self.notes {
            out.push_str(&format!("Note      {n}\n"));
        }
        out
    }
}
