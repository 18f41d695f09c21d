//! One request through the filter's pipeline (`cors_core::pipeline`, the code the filter
//! runs), with a view built from the command line and the Envoy config's route table, and the
//! reasons spelled out: which key chose the policy, what was decided, what the response carries
//! and what a browser concludes from it. The build's rules apply (`Build`): where the other
//! build would answer otherwise, the explanation says so.

use crate::browser;
use crate::chain::{ChainRequest, Earlier, Effect};
use crate::hints::policy_notes;
use crate::input::Input;
use crate::report::{Before, Disposition, Explanation, OtherBuild};
use crate::routes::{locate, ActualRoute, Located, Location, RouteTable};
use crate::source::{Build, Loaded};
use cors_core::config::{Config, RouteConfig, Source};
use cors_core::decision::Kind;
use cors_core::headers::*;
use cors_core::pipeline::{self, Action, Enforcement, HostView, Outcome, Selected};
use cors_core::policy::Policy;
use cors_core::route_metadata::MetadataCache;
use cors_core::structpb::encode::encode_filter_metadata;
use std::sync::Arc;

/// What the explanation runs on: the configuration, its route table, and whose rules apply.
#[derive(Clone, Copy)]
struct Setup<'a> {
    config: &'a Config,
    routes: Option<&'a RouteTable>,
    build: Build,
    /// The HTTP filters before ours.
    chain: &'a [Earlier],
}

/// Explains one request under the loaded configuration, by its build's rules.
pub fn explain(loaded: &Loaded, input: &Input) -> Result<Explanation, String> {
    let setup = Setup {
        config: &loaded.config,
        routes: loaded.routes.as_ref(),
        build: loaded.build,
        chain: &loaded.chain,
    };
    let mut ex = explain_as(setup, input)?;
    ex.other_build = other_build(setup, input, &ex)?;
    Ok(ex)
}

/// The steps: where the request goes, the pipeline's outcome, notes on it, the actual request
/// that follows an allowed preflight, and the browser's conclusion.
fn explain_as(setup: Setup, input: &Input) -> Result<Explanation, String> {
    let located = locate(input, setup.routes)?;
    let rematched = rematched(setup, input, &located);
    let loc = rematched.map_or(&located.request, |actual| &actual.location);
    let mut notes: Vec<String> = located
        .actual
        .as_ref()
        .map(|actual| split_note(setup, actual, rematched.is_some()))
        .into_iter()
        .chain(located.notes.iter().cloned())
        .collect();
    notes.extend(unknown_metadata_note(setup.config, loc, input));
    let view = ExplainView {
        input,
        loc,
        build: setup.build,
    };
    let effects = chain_effects(setup, input, &located);
    // The first filter certain to answer (they run in order) keeps the request from ours.
    let stop = effects.iter().find_map(|(e, effect)| match effect {
        Effect::Answers(status, _) => Some((e.name.clone(), *status)),
        _ => None,
    });
    // A fresh cache: each explanation decodes route metadata as a filter seeing it first does.
    let cache = MetadataCache::default();
    let (mut ex, policy) = pipeline::on_request(setup.config, &cache, &view, |outcome| {
        report(setup, input, loc, outcome, notes, stop)
    });
    ex.before = effects
        .into_iter()
        .map(|(e, effect)| Before {
            filter: e.name.clone(),
            type_name: e.type_name.clone(),
            headers: match effect {
                Effect::Passes(_) => Vec::new(),
                _ => ex.earlier_reply.clone(),
            },
            effect,
        })
        .collect();
    let Some(origin) = input.origin.as_deref() else {
        ex.notes.push(without_origin_note(&ex, input));
        return Ok(ex);
    };
    if let Some(policy) = &policy {
        policy_notes(&mut ex, policy, input, origin);
    }
    ex.then = follow_up(setup, input, &ex)?.map(Box::new);
    ex.browser = Some(browser::conclude(&ex, origin, input.method(), input));
    Ok(ex)
}

/// What each filter before ours does with the request.
fn chain_effects<'s>(
    setup: Setup<'s>,
    input: &Input,
    located: &Located,
) -> Vec<(&'s Earlier, Effect)> {
    let request = ChainRequest {
        method: input.method(),
        preflight: input.origin.is_some()
            && input.method() == "OPTIONS"
            && input
                .request_method
                .as_deref()
                .is_some_and(|m| !m.is_empty()),
        path: input.path.as_deref(),
        per_filter: located.request.per_filter.clone(),
    };
    setup
        .chain
        .iter()
        .map(|e| (e, e.effect(&request)))
        .collect()
}

/// The actual request's route, when the build judges this preflight by it: the native build
/// matches the route again with `:method` set to the `Access-Control-Request-Method` when the
/// policy can depend on the route (`Config::selects_by_route`, per-route configurations). The
/// Wasm build cannot (docs/method-split-routes.md).
fn rematched<'l>(setup: Setup, input: &Input, located: &'l Located) -> Option<&'l ActualRoute<'l>> {
    let actual = located.actual.as_ref()?;
    let view = ExplainView {
        input,
        loc: &located.request,
        build: setup.build,
    };
    let route_matters =
        setup.config.selects_by_route() || setup.routes.is_some_and(RouteTable::has_route_configs);
    (setup.build == Build::Native && route_matters && pipeline::preflight_method(&view).is_some())
        .then_some(actual)
}

/// A preflight that takes another route than its actual request: what the build makes of it.
fn split_note(setup: Setup, actual: &ActualRoute, rematched: bool) -> String {
    let (preflight, route, method) = (
        &actual.preflight_route,
        &actual.actual_route,
        &actual.method,
    );
    let takes = format!(
        "the preflight (OPTIONS) takes {preflight}, but the actual {method} request takes {route}"
    );
    match (setup.build, rematched) {
        (Build::Wasm, _) => format!(
            "{takes}: the filter answers the preflight with the policy of the preflight's route (in \
             a Wasm filter Envoy 1.40 cannot re-match the route for another method). Give OPTIONS \
             the same route (drop the :method match, or add OPTIONS to it), or key the policy on \
             the virtual host"
        ),
        (Build::Native, true) => format!(
            "{takes}: the native build judges the preflight by {route} (it matches the route again \
             with :method {method}: that route's name and per-route configuration); forwarded, \
             the preflight still goes upstream as OPTIONS by {preflight}"
        ),
        (Build::Native, false) => format!(
            "{takes}; the policy does not depend on the route here (no routes, route metadata or \
             per-route configuration), so the native build does not match the route again"
        ),
    }
}

/// Route metadata that only the Envoy config shows, when the configuration reads it.
fn unknown_metadata_note(config: &Config, loc: &Location, input: &Input) -> Option<String> {
    (config.metadata_namespace.is_some()
        && !loc.metadata_known
        && loc.route.is_some()
        && input.origin.is_some())
    .then(|| {
        "route metadata unknown (plugin configuration given alone): a policy in the route's \
         metadata would take precedence; pass the Envoy config to see it"
            .into()
    })
}

/// The pipeline's outcome as a report, with the selected policy (for the notes).
fn report(
    setup: Setup,
    input: &Input,
    loc: &Location,
    outcome: Outcome,
    notes: Vec<String>,
    stop: Option<(String, u32)>,
) -> (Explanation, Option<Arc<Policy>>) {
    let (source, key, why) = selection(&outcome.selected, setup.config, loc);
    let policy = match &outcome.selected {
        Selected::Policy(p, _) => Some(p.clone()),
        _ => None,
    };
    let mut ex = Explanation {
        input: input.clone(),
        build: setup.build,
        route: loc.route.clone(),
        vhost: loc.vhost.clone(),
        location: loc.how.clone(),
        policy: policy.as_ref().map(|p| policy_name(p)),
        source,
        key,
        why,
        kind: outcome.verdict.as_ref().map(|v| v.kind),
        disposition: Disposition::PassedThrough,
        forwarded: true,
        status: None,
        refusal: outcome
            .verdict
            .as_ref()
            .and_then(|v| v.refusal)
            .map(|r| r.class()),
        reason: outcome.verdict.as_ref().and_then(|v| v.reason.clone()),
        counter: outcome.verdict.as_ref().and_then(|v| {
            setup
                .config
                .counter_names()
                .nth(v.counter)
                .map(|n| format!("{}{n}", setup.build.counter_prefix()))
        }),
        shadow: outcome.enforcement == Some(Enforcement::Shadow),
        headers: input.upstream_headers.clone(),
        edits: Vec::new(),
        browser: None,
        then: None,
        other_build: None,
        notes,
        answered_by: None,
        before: Vec::new(),
        earlier_reply: Vec::new(),
    };
    ex.notes.extend(
        outcome
            .logs
            .iter()
            .filter(|(level, _)| *level == pipeline::LogLevel::Warn)
            .map(|(_, line)| format!("warning: {line}")),
    );
    ex.earlier_reply = earlier_reply(setup.build, &outcome.action);
    match stop {
        Some((filter, status)) => answered_earlier(&mut ex, setup.build, filter, status),
        None => act(&mut ex, outcome.action, input),
    }
    (ex, policy)
}

/// What a reply from a filter before ours carries once it passed ours: nothing in the Wasm
/// build (its filter never saw the request, and cannot read request headers in the response
/// phase); in the native build the CORS headers the pipeline grants a forwarded request (it
/// runs late, on the reply). An answer the pipeline would give itself (an allowed preflight)
/// cannot be given then: the reply keeps its status and gets nothing.
fn earlier_reply(build: Build, action: &Action<pipeline::ResponsePlan>) -> Vec<(String, String)> {
    match (build, action) {
        (Build::Native, Action::Forward(plan)) => plan
            .response_edits::<&str, &str>(&[])
            .into_iter()
            .filter_map(|(name, value)| {
                value.map(|v| (name.to_owned(), String::from_utf8_lossy(&v).into_owned()))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// An earlier filter answered the request: ours never decided on it (Wasm), or decided late
/// and decorated the reply (native).
fn answered_earlier(ex: &mut Explanation, build: Build, filter: String, status: u32) {
    ex.forwarded = false;
    ex.status = Some(status);
    ex.disposition = Disposition::AnsweredEarlier;
    ex.headers = ex.earlier_reply.clone();
    ex.edits = ex
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), Some(v.clone())))
        .collect();
    if build == Build::Wasm {
        ex.counter = None;
        ex.refusal = None;
        ex.reason = None;
    }
    ex.answered_by = Some(filter);
}

/// What the filter does: the reply it sends, or its edits of the upstream's response.
fn act(ex: &mut Explanation, action: Action<pipeline::ResponsePlan>, input: &Input) {
    let refused = ex.refusal.is_some();
    match action {
        Action::Pass => {}
        Action::Reply { status, headers } => {
            ex.forwarded = false;
            ex.status = Some(status);
            ex.headers = headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            ex.disposition = if refused {
                Disposition::Refused
            } else {
                Disposition::AnsweredPreflight
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
            ex.disposition = if refused {
                Disposition::Refused
            } else {
                Disposition::Forwarded
            };
        }
    }
}

/// A policy's name is its field path; a per-route configuration's policy is the whole value,
/// whose path is empty.
fn policy_name(policy: &Policy) -> String {
    if policy.name.is_empty() {
        "per-route configuration".to_owned()
    } else {
        policy.name.clone()
    }
}

fn without_origin_note(ex: &Explanation, input: &Input) -> String {
    if ex.edits.is_empty() {
        "no Origin header: not a CORS request; the filter does nothing (browsers send Origin on every cross-origin request)"
            .into()
    } else {
        format!(
            "no Origin header: not a CORS request, but a {} response may be cached: the filter gives it the \
             headers that keep shared caches from serving it to a CORS request \
             (requests_without_origin: cache_safe, the default)",
            input.method()
        )
    }
}

/// After a preflight the browser lets through: the actual request it sends next.
fn follow_up(setup: Setup, input: &Input, ex: &Explanation) -> Result<Option<Explanation>, String> {
    let allowed = ex.kind == Some(Kind::Preflight)
        && !matches!(
            ex.disposition,
            Disposition::Refused | Disposition::AnsweredEarlier
        )
        && !ex.shadow;
    let Some(actual_method) = input.request_method.clone().filter(|_| allowed) else {
        return Ok(None);
    };
    let follow = Input {
        method: Some(actual_method),
        request_method: None,
        request_headers: None,
        private_network: false,
        ..input.clone()
    };
    explain_as(setup, &follow).map(Some)
}

/// What the other build would do, when it differs: a preflight on a route apart from its
/// actual request's, which only the native build matches again.
fn other_build(
    setup: Setup,
    input: &Input,
    ex: &Explanation,
) -> Result<Option<OtherBuild>, String> {
    let located = locate(input, setup.routes)?;
    let Some(actual) = &located.actual else {
        return Ok(None);
    };
    let other = Setup {
        build: setup.build.other(),
        ..setup
    };
    let theirs = explain_as(other, input)?;
    let differs = theirs.policy != ex.policy
        || theirs.disposition != ex.disposition
        || theirs.headers != ex.headers;
    if !differs {
        return Ok(None);
    }
    let by = if rematched(other, input, &located).is_some() {
        format!(
            "{} (the actual {} request's route; it matches the route again)",
            actual.actual_route, actual.method
        )
    } else {
        format!(
            "{} (the preflight's own route; it does not match the route again)",
            actual.preflight_route
        )
    };
    Ok(Some(OtherBuild {
        build: other.build,
        by,
        policy: theirs.policy,
        why: theirs.why,
        disposition: theirs.disposition,
    }))
}

/// The pipeline's view of the request being explained.
struct ExplainView<'a> {
    input: &'a Input,
    loc: &'a Location<'a>,
    build: Build,
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
        // As Envoy serializes it for the Wasm filter: the same decoder then reads it. The
        // native module cannot read it (`unreadable_route_metadata`).
        match self.build {
            Build::Wasm => self.loc.metadata.map(encode_filter_metadata),
            Build::Native => None,
        }
    }

    fn unreadable_route_metadata(&self, namespace: &str) -> Option<&'static str> {
        let present = self.loc.metadata.is_some_and(|m| m.contains_key(namespace));
        (self.build == Build::Native && present).then_some(
            "the native build cannot read a policy from route metadata (Envoy 1.40's module ABI \
             has no Struct getter); use the routes map or a per-route configuration",
        )
    }

    fn route_config(&self) -> Option<&RouteConfig> {
        self.loc.route_config.map(|r| &r.config)
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
    loc: &Location<'_>,
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
                "{} carries the filter's own typed_per_filter_config (the most specific of route, virtual host and route configuration), which comes before the filter-level configuration",
                loc.route_config.map_or("the route", |r| r.at.as_str())
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

fn unmatched(config: &Config, loc: &Location<'_>) -> String {
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
