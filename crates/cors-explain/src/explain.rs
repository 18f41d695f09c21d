//! One request through the filter's pipeline (`cors_core::pipeline`, the code the filter
//! runs), with a view built from the command line and the Envoy config's route table, and the
//! reasons spelled out: which key chose the policy, what was decided, what the response carries
//! and what a browser concludes from it.

use crate::browser::{self, Preflight};
use crate::input::Input;
use crate::report::{Explanation, Outcome, Verdict};
use crate::routes::RouteTable;
use cors_core::config::{Config, Source};
use cors_core::decision::Kind;
use cors_core::headers::*;
use cors_core::pipeline::{self, Action, Enforcement, HostView, Selected};
use cors_core::policy::Policy;
use cors_core::route_metadata::MetadataCache;
use cors_core::stats;
use cors_core::structpb::encode::encode_filter_metadata;
use serde_json::{Map, Value};

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
        let (vh, route) = table.match_request(host, path, input.method())?;
        if let Some(actual) = input
            .request_method
            .as_deref()
            .filter(|m| !m.is_empty() && input.method() == "OPTIONS")
        {
            let (_, actual_route) = table.match_request(host, path, actual)?;
            let name = |r: Option<&crate::routes::Route>| match r {
                None => "no route".to_owned(),
                Some(r) => r
                    .name
                    .as_deref()
                    .map_or("an unnamed route".to_owned(), |n| format!("route {n:?}")),
            };
            if name(route) != name(actual_route) {
                notes.push(format!(
                    "the preflight (OPTIONS) takes {}, but the actual {actual} request takes {}: the \
                     filter answers the preflight with the policy of the preflight's route (in a Wasm \
                     filter Envoy 1.40 cannot re-match the route for another method). Give OPTIONS the \
                     same route (drop the :method match, or add OPTIONS to it), or key the policy on \
                     the virtual host",
                    name(route),
                    name(actual_route)
                ));
            }
        }
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

/// The pipeline's view of the request being explained.
struct ExplainView<'a> {
    input: &'a Input,
    loc: &'a Location,
}

impl HostView for ExplainView<'_> {
    fn request_header(&self, name: &str) -> Option<&[u8]> {
        fn text(v: &Option<String>) -> Option<&[u8]> {
            v.as_deref().map(str::as_bytes)
        }
        match name {
            ":method" => Some(self.input.method().as_bytes()),
            ORIGIN => text(&self.input.origin),
            ACCESS_CONTROL_REQUEST_METHOD => text(&self.input.request_method),
            ACCESS_CONTROL_REQUEST_HEADERS => text(&self.input.request_headers),
            ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK => {
                self.input.private_network.then_some(b"true".as_slice())
            }
            _ => None,
        }
    }

    fn route_name(&self) -> Option<Vec<u8>> {
        self.loc.route.as_ref().map(|r| r.as_bytes().to_vec())
    }

    fn virtual_host_name(&self) -> Option<Vec<u8>> {
        self.loc.vhost.as_ref().map(|v| v.as_bytes().to_vec())
    }

    fn route_metadata(&self) -> Option<Vec<u8>> {
        // As Envoy serializes it for the filter: the same decoder then reads it.
        self.loc.metadata.as_ref().map(encode_filter_metadata)
    }

    /// Shows an enforced request; a partial share is explained in a note.
    fn random(&self) -> u32 {
        0
    }

    fn wants_reason(&self) -> bool {
        true
    }
}

/// Which key chose the policy: `(source, key, why)`.
fn selection(
    selected: &Selected,
    config: &Config,
    loc: &Location,
) -> (&'static str, Option<String>, String) {
    let source = match selected {
        Selected::NotCors => {
            return (
                "not_cors",
                None,
                "no Origin: the filter looks up no policy".to_owned(),
            )
        }
        Selected::Nothing => {
            return (
                "none",
                None,
                format!(
                    "no policy applies: {} and there is no default `policy`",
                    unmatched(config, loc)
                ),
            )
        }
        Selected::Invalid(e) => {
            let ns = config.metadata_namespace.clone();
            return ("route_metadata", ns, e.to_string());
        }
        Selected::Off(source) | Selected::Policy(_, source) => *source,
    };
    let (name, key, mut why) = match source {
        Source::PerRoute => (
            "per_route",
            None,
            format!(
                "route {:?} (or its virtual host) carries the filter's own typed_per_filter_config, which comes before the filter-level configuration (native build)",
                loc.route.as_deref().unwrap_or("(unnamed)")
            ),
        ),
        Source::RouteMetadata(ns) => (
            "route_metadata",
            Some(ns.to_owned()),
            format!(
                "route {:?} carries a policy in metadata filter_metadata.{ns}, which comes before routes, virtual_hosts and policy",
                loc.route.as_deref().unwrap_or("(unnamed)")
            ),
        ),
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
    if matches!(selected, Selected::Off(_)) {
        why.push_str(", whose value is null: CORS is off there");
    }
    (name, key, why)
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

pub fn explain(
    config: &Config,
    routes: Option<&RouteTable>,
    input: &Input,
) -> Result<Explanation, String> {
    let mut notes = Vec::new();
    let loc = locate(input, routes, &mut notes)?;
    if config.metadata_namespace.is_some()
        && !loc.metadata_known
        && loc.route.is_some()
        && input.origin.is_some()
    {
        notes.push(
            "route metadata unknown (plugin configuration given alone): a policy in the route's \
             metadata would take precedence; pass the Envoy config to see it"
                .into(),
        );
    }
    let view = ExplainView { input, loc: &loc };
    // A fresh cache: each explanation decodes route metadata as a filter seeing it first does.
    let cache = MetadataCache::default();
    let ex = pipeline::on_request(config, &cache, &view, |outcome| {
        let (source, key, why) = selection(&outcome.selected, config, &loc);
        let policy = match &outcome.selected {
            Selected::Policy(p, _) => Some(p.clone()),
            _ => None,
        };
        let mut ex = Explanation {
            input: input.clone(),
            route: loc.route.clone(),
            vhost: loc.vhost.clone(),
            location: loc.how.clone(),
            policy: policy.as_ref().map(|p| p.name.clone()),
            source,
            key,
            why,
            kind: outcome.verdict.as_ref().map(|v| v.kind),
            outcome: Outcome::PassedThrough,
            forwarded: true,
            status: None,
            refusal: outcome
                .verdict
                .as_ref()
                .and_then(|v| v.refusal)
                .map(|r| r.class()),
            reason: outcome.verdict.as_ref().and_then(|v| v.reason.clone()),
            counter: outcome.verdict.as_ref().and_then(|v| {
                stats::names()
                    .nth(v.counter)
                    .map(|n| format!("wasmcustom.{n}"))
            }),
            shadow: outcome.enforcement == Some(Enforcement::Shadow),
            headers: input.upstream_headers.clone(),
            edits: Vec::new(),
            browser: None,
            then: None,
            notes: std::mem::take(&mut notes),
        };
        ex.notes.extend(
            outcome
                .logs
                .iter()
                .filter(|(level, _)| *level == pipeline::LogLevel::Warn)
                .map(|(_, line)| format!("warning: {line}")),
        );
        let refused = ex.refusal.is_some();
        match outcome.action {
            Action::Pass => {}
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
                let existing: Vec<(String, &[u8])> = input
                    .upstream_headers
                    .iter()
                    .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes()))
                    .collect();
                for (name, value) in plan.response_edits(&existing) {
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
        (ex, policy)
    });
    let (mut ex, policy) = ex;
    let Some(origin) = input.origin.as_deref() else {
        ex.notes.push(if ex.edits.is_empty() {
            "no Origin header: not a CORS request; the filter does nothing (browsers send Origin on every cross-origin request)"
                .into()
        } else {
            format!(
                "no Origin header: not a CORS request, but a {} response may be cached: the filter gives it the \
                 headers that keep shared caches from serving it to a CORS request \
                 (requests_without_origin: cache_safe, the default)",
                input.method()
            )
        });
        return Ok(ex);
    };
    let method = input.method();
    if let Some(policy) = &policy {
        policy_notes(&mut ex, policy, input, origin);
    }
    if ex.kind == Some(Kind::Preflight) && ex.outcome != Outcome::Refused && !ex.shadow {
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

/// Notes on how the policy treated the request: partial or shadow enforcement, near misses of
/// a refused origin, Access-Control-Request-* headers on a request that is not a preflight.
fn policy_notes(ex: &mut Explanation, policy: &Policy, input: &Input, origin: &str) {
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
    if ex.kind.is_none() {
        ex.notes.push(format!(
            "{}.filter_enabled is 0%: the filter does nothing",
            policy.name
        ));
        return;
    }
    let is_options = input.method() == "OPTIONS";
    if !is_options
        && (input.request_method.is_some()
            || input.request_headers.is_some()
            || input.private_network)
    {
        ex.notes
            .push("Access-Control-Request-* headers are only read on OPTIONS requests".into());
    }
    if ex.refusal == Some("origin") {
        ex.notes.extend(
            origin_hints(policy, origin)
                .into_iter()
                .map(|(why, allowed)| format!("{why}: {allowed} would be allowed")),
        );
    }
    if is_options && ex.kind == Some(Kind::Actual) {
        ex.notes.push(
            "OPTIONS without a non-empty Access-Control-Request-Method is not a preflight: browsers never send one \
             as a preflight, and the filter treats it as an actual request (forwarded upstream). \
             Send a real preflight: add Access-Control-Request-Method"
                .into(),
        );
    }
    if ex.shadow {
        ex.notes.push(format!(
            "shadow mode ({}.shadow_enabled): counted and logged, not enforced: the request passes through untouched",
            policy.name
        ));
    }
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
    if let Some(listed) = policy.origins.listed_with_another_port(origin) {
        let any_port = match listed.rsplit_once(':') {
            Some((rest, port)) if port.bytes().all(|b| b.is_ascii_digit()) => rest,
            _ => listed,
        };
        hints.push((
            "only another port of this host is listed, and dev servers change ports; with the any-port pattern in allow_origins, every port",
            format!("{any_port}:*"),
        ));
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
