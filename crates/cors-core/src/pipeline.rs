//! One request through the filter, for every host (the proxy-wasm module, `cors-explain`, a
//! native module): no `Origin` → nothing; policy selection (a per-route configuration, route metadata, then `routes`,
//! then `virtual_hosts`, then `policy`); `filter_enabled` / `shadow_enabled`; the decision.
//! A host implements `HostView` over its own calls and acts on the `Outcome`'s `Action`: it
//! sends the reply, or remembers the `ResponsePlan` and applies its `response_edits` to the
//! response.
//!
//! Requests without `Origin` are not CORS requests, but a cacheable one (`GET`, `HEAD`) still
//! gets a response that caches cannot confuse (`requests_without_origin: cache_safe`, the
//! default): `Vary: Origin`, or the constant answer of a policy that allows any origin.
//!
//! The pipeline asks the view lazily and in a fixed order, so the number of host calls per
//! path is a property of this module (pinned by the counting-view tests below):
//! 1. `request_header`: its first call reads every request header at once (`origin`,
//!    `:method`, the preflight headers); the only call for a request that needs nothing;
//! 2. `route_config` (a host with per-route configuration: the native module); then
//!    `route_metadata` (then `unreadable_route_metadata` when it gave nothing) when
//!    `route_metadata_namespace` is set; `route_name` / `virtual_host_name` only when the
//!    configuration has `routes` / `virtual_hosts`.

use crate::config::{Config, RouteConfig, Source, WithoutOrigin};
use crate::cross_origin::{self, Guarded, Protection};
pub use crate::decision::Action;
use crate::decision::{self, Decision, Grant, Kind, Refusal, Request};
use crate::headers::*;
use crate::policy::Policy;
use crate::route_metadata::{self, MetadataCache, MetadataPolicy};
use crate::stats;
use std::borrow::Cow;
use std::sync::Arc;

/// What a host can tell the pipeline about one request. Each method is at most one host call.
pub trait HostView {
    /// A request header by lower-case name (`:method` included). The first call may read every
    /// request header in one host call; later calls must not call the host again. (A host whose
    /// calls are cheap, the native module, reads one header per call instead.)
    fn request_header(&self, name: &str) -> Option<&[u8]>;
    /// `xds.route_name`.
    fn route_name(&self) -> Option<Vec<u8>>;
    /// `xds.virtual_host_name`.
    fn virtual_host_name(&self) -> Option<Vec<u8>>;
    /// `xds.route_metadata`: the route's `envoy.config.core.v3.Metadata`, protobuf bytes.
    fn route_metadata(&self) -> Option<Vec<u8>>;
    /// Asked only when `route_metadata` gave nothing: whether the route has metadata in
    /// `namespace` all the same, which this host cannot read whole, and why. (Envoy 1.40's
    /// dynamic-module ABI reads route metadata as scalars and lists of scalars only, never as a
    /// Struct.) Such a route's policy counts as invalid: CORS is off there, logged once per
    /// route. Hosts that read the metadata whole keep this default, which calls nothing.
    fn unreadable_route_metadata(&self, _namespace: &str) -> Option<&'static str> {
        None
    }
    /// The route's own configuration for the filter (`typed_per_filter_config`), for hosts that
    /// have one (the native module): asked before anything else selects a policy. Hosts
    /// without per-route configuration keep this default, which calls nothing.
    fn route_config(&self) -> Option<&RouteConfig> {
        None
    }
    /// A uniformly distributed number; asked only for a partial `filter_enabled` or
    /// `shadow_enabled`. Not a host call.
    fn random(&self) -> u32;
    /// Whether the host wants refusal reasons (a debug log, an explanation). Not a host call.
    fn wants_reason(&self) -> bool;
}

/// Which policy applies to a request, and which key of the configuration chose it.
#[derive(Debug)]
pub enum Selected<'a> {
    /// No policy was looked up: a request without `Origin` that needs nothing.
    NotCors,
    /// No key applies and there is no default `policy`.
    Nothing,
    /// The key's value is `null`: CORS is off there.
    Off(Source<'a>),
    /// The route's metadata holds an invalid policy (the error): CORS is off on that route.
    Invalid(Arc<str>),
    Policy(Arc<Policy>, Source<'a>),
}

/// How `filter_enabled` / `shadow_enabled` treat this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    Enforced,
    /// Decided and counted, not enforced.
    Shadow,
    /// Neither: the filter does nothing.
    Disabled,
}

/// The decision on a CORS request, whether enforced or in shadow mode.
#[derive(Debug)]
pub struct Verdict<'a> {
    pub kind: Kind,
    pub refusal: Option<Refusal<'a>>,
    /// The counter to bump (`stats::names()` order).
    pub counter: usize,
    /// Why it was refused: when the host wants reasons or the policy sends `x-cors-reason`.
    pub reason: Option<String>,
}

/// What the response phase needs, owned: hosts keep it from the request to the response.
#[derive(Debug)]
pub struct ResponsePlan {
    pub policy: Arc<Policy>,
    pub grant: Grant,
    pub origin: Vec<u8>,
    /// `x-cors-reason` for a refused request, when the policy asks for it.
    pub reason: Option<String>,
}

impl ResponsePlan {
    /// Whether `response_edits` looks at a response header (lower-case name): the CORS headers
    /// and `Vary`. Hosts hand it only those.
    pub fn reads(name: &[u8]) -> bool {
        name.starts_with(b"access-control-") || name == VARY.as_bytes()
    }

    /// The header edits for the response: `(name, Some(value))` sets, `(name, None)` removes.
    /// `existing` needs only the response's CORS headers and `Vary` (lower-case names).
    pub fn response_edits<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        existing: &[(N, V)],
    ) -> Vec<(&'static str, Option<Cow<'_, [u8]>>)> {
        decision::response_edits(
            self.grant,
            &self.policy,
            &self.origin,
            self.reason.as_deref(),
            existing,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Debug,
}

/// Everything the pipeline concluded about one request.
#[derive(Debug)]
pub struct Outcome<'a> {
    pub selected: Selected<'a>,
    /// `None` when no policy applies.
    pub enforcement: Option<Enforcement>,
    /// `None` when nothing was decided (no policy, or disabled).
    pub verdict: Option<Verdict<'a>>,
    /// What the host does: pass, answer now, or forward and apply the `ResponsePlan`.
    pub action: Action<'a, ResponsePlan>,
    /// Lines for the host's log: an invalid route-metadata policy on first sight (error), its
    /// warnings, and a refusal's reason when the host wants reasons (debug).
    pub logs: Vec<(LogLevel, String)>,
}

/// Runs one request through the pipeline and hands the outcome to `act`, whose result is
/// returned. (A callback, because a reply's headers borrow the policy and the origin, which
/// live here.)
pub fn on_request<V: HostView, R>(
    config: &Config,
    metadata: &MetadataCache,
    view: &V,
    act: impl for<'o> FnOnce(Outcome<'o>) -> R,
) -> R {
    let method = view.request_header(":method").unwrap_or_default();
    let Some(origin) = view.request_header(ORIGIN) else {
        return without_origin(config, metadata, view, method, act);
    };
    let mut logs = Vec::new();
    let selected = select(config, metadata, view, &mut logs);
    let (policy, enforcement) = match enforce(&selected, view) {
        Some((policy, enforcement)) if enforcement != Enforcement::Disabled => {
            (policy, enforcement)
        }
        enforcement => return act(outcome(selected, enforcement.map(|(_, e)| e), logs)),
    };
    let is_options = method == b"OPTIONS";
    // The `Access-Control-Request-*` headers mean something only on a preflight; any other
    // request does not ask for them (a host call each in the native build).
    let preflight_header = |name| is_options.then(|| view.request_header(name)).flatten();
    let request = Request {
        origin,
        method,
        request_method: preflight_header(ACCESS_CONTROL_REQUEST_METHOD),
        request_headers: preflight_header(ACCESS_CONTROL_REQUEST_HEADERS),
        private_network: preflight_header(ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK)
            .is_some_and(|v| v.eq_ignore_ascii_case(b"true")),
    };
    let mut decision = decision::decide(&policy, &request);
    let reported = protect(&policy, &request, &mut decision, view);
    conclude(
        selected,
        &policy,
        enforcement,
        &request,
        decision,
        reported,
        view,
        logs,
        act,
    )
}

/// `cross_origin_protection` on a request with `Origin`, after the CORS decision: nothing
/// more is read unless the policy has it on. Returns true when it refuses in report mode.
fn protect<'a, 'r: 'a>(
    policy: &'a Policy,
    request: &Request<'r>,
    decision: &mut Decision<'a, 'r>,
    view: &'r impl HostView,
) -> bool {
    if policy.cross_origin_protection == Protection::Off {
        return false;
    }
    let header = |name: &str| view.request_header(name);
    let Some(guarded) = cross_origin::guarded(request.method, header) else {
        return false;
    };
    // A guarded request is never a preflight (not OPTIONS): `decide` refused it exactly when
    // the origin is not allowed, which is what Go calls untrusted.
    let trusted = || decision.refusal.is_none();
    let Some(refused) = cross_origin::check(guarded, Some(request.origin), header, trusted) else {
        return false;
    };
    let enforce = policy.cross_origin_protection == Protection::Enforce;
    decision::refuse_cross_origin(policy, request, decision, refused, enforce);
    !enforce
}

/// The verdict on a decided request (counter, reason, log line) and the outcome handed to
/// `act`. `reported`: refused by `cross_origin_protection: report`, counted as shadow mode is.
#[allow(clippy::too_many_arguments)]
fn conclude<'o, V: HostView, R>(
    selected: Selected<'o>,
    policy: &Arc<Policy>,
    enforcement: Enforcement,
    request: &Request<'o>,
    decision: Decision<'_, 'o>,
    reported: bool,
    view: &V,
    mut logs: Vec<(LogLevel, String)>,
    act: impl for<'p> FnOnce(Outcome<'p>) -> R,
) -> R {
    let shadow = enforcement == Enforcement::Shadow;
    let explain = decision.refusal.is_some()
        && (view.wants_reason() || (policy.debug_reason_header && !shadow));
    let reason = decision
        .refusal
        .filter(|_| explain)
        .map(|refusal| decision::reason(policy, request, refusal));
    if let (Some(reason), true) = (&reason, view.wants_reason()) {
        let mode = if shadow {
            " (shadow mode: not enforced)"
        } else if reported {
            " (report mode: not enforced)"
        } else {
            ""
        };
        logs.push((LogLevel::Debug, format!("refused: {reason}{mode}")));
    }
    let verdict = Verdict {
        kind: decision.kind,
        refusal: decision.refusal,
        counter: stats::index(decision.kind, decision.refusal, shadow || reported),
        reason,
    };
    let enforcement = Some(enforcement);
    let verdict = Some(verdict);
    // Each arm hands over its own outcome: a reply borrows the origin, a forward takes it.
    match decision.action {
        // Only a request without `Origin` that `report` refused: counted, nothing to do.
        Action::Pass => act(Outcome {
            selected,
            enforcement,
            verdict,
            action: Action::Pass,
            logs,
        }),
        _ if shadow => act(Outcome {
            selected,
            enforcement,
            verdict,
            action: Action::Pass,
            logs,
        }),
        Action::Reply { status, headers } => act(Outcome {
            selected,
            enforcement,
            verdict,
            action: Action::Reply { status, headers },
            logs,
        }),
        Action::Forward(grant) => {
            let reason = verdict
                .as_ref()
                .and_then(|v| v.reason.clone())
                .filter(|_| policy.debug_reason_header);
            act(Outcome {
                selected,
                enforcement,
                verdict,
                action: Action::Forward(ResponsePlan {
                    policy: policy.clone(),
                    grant,
                    origin: request.origin.to_vec(),
                    reason,
                }),
                logs,
            })
        }
    }
}

/// The `Access-Control-Request-Method` of a preflight (`OPTIONS` with `Origin` and a non-empty
/// `Access-Control-Request-Method`) when it is a token, as a method must be, else `None`. A host that can match the route again (the
/// native module) judges such a preflight by the route a request with this method takes, as
/// the browser's actual request will; it asks only when `Config::selects_by_route` or a
/// per-route configuration makes the route matter.
pub fn preflight_method<V: HostView>(view: &V) -> Option<&[u8]> {
    let request = Request {
        method: view.request_header(":method")?,
        origin: view.request_header(ORIGIN)?,
        request_method: view.request_header(ACCESS_CONTROL_REQUEST_METHOD),
        ..Request::default()
    };
    request
        .is_preflight()
        .then_some(request.request_method)
        .flatten()
        .filter(|method| is_token(method))
}

/// A request without `Origin`: nothing, unless its response may be cached (`GET`, `HEAD`) and
/// the configuration keeps such responses cache-safe. Then the policy that a CORS request
/// would get decides: a constant answer (any origin, no credentials) is sent as is; any other
/// gets `Vary: Origin` and loses CORS headers the upstream set. No verdict, no counter: this is
/// not a CORS request.
fn without_origin<V: HostView, R>(
    config: &Config,
    metadata: &MetadataCache,
    view: &V,
    method: &[u8],
    act: impl for<'o> FnOnce(Outcome<'o>) -> R,
) -> R {
    let cacheable = method == b"GET" || method == b"HEAD";
    // Go's rule refuses an unsafe request without `Origin` whose `Sec-Fetch-Site` says it is
    // cross-site. Read only while some policy has the protection on, and the policy is looked
    // up only for such a request (rare: browsers send `Origin` on every unsafe request).
    if !cacheable && method != b"OPTIONS" && cross_origin::in_use() {
        let header = |name: &str| view.request_header(name);
        if cross_origin::sec_fetch_site(&header).is_some_and(|s| !cross_origin::is_same_origin(s)) {
            return protect_without_origin(config, metadata, view, method, act);
        }
    }
    if config.without_origin == WithoutOrigin::Pass || !cacheable {
        return act(outcome(Selected::NotCors, None, Vec::new()));
    }
    let mut logs = Vec::new();
    let selected = select(config, metadata, view, &mut logs);
    let policy = match enforce(&selected, view) {
        Some((policy, Enforcement::Enforced)) => policy,
        // Shadow mode changes nothing, and neither does a disabled policy.
        enforcement => return act(outcome(selected, enforcement.map(|(_, e)| e), logs)),
    };
    let grant = if policy.origins.allows_any() && !policy.allow_credentials {
        Grant::Allow { echo_origin: false }
    } else {
        Grant::Deny
    };
    act(Outcome {
        selected,
        enforcement: Some(Enforcement::Enforced),
        verdict: None,
        action: Action::Forward(ResponsePlan {
            policy,
            grant,
            origin: Vec::new(),
            reason: None,
        }),
        logs,
    })
}

/// An unsafe request without `Origin` and with a cross-site `Sec-Fetch-Site`: refused when the
/// selected policy has `cross_origin_protection` on, else passed as before.
fn protect_without_origin<V: HostView, R>(
    config: &Config,
    metadata: &MetadataCache,
    view: &V,
    method: &[u8],
    act: impl for<'o> FnOnce(Outcome<'o>) -> R,
) -> R {
    let mut logs = Vec::new();
    let selected = select(config, metadata, view, &mut logs);
    let (policy, enforcement) = match enforce(&selected, view) {
        Some((policy, enforcement))
            if enforcement != Enforcement::Disabled
                && policy.cross_origin_protection != Protection::Off =>
        {
            (policy, enforcement)
        }
        enforcement => return act(outcome(selected, enforcement.map(|(_, e)| e), logs)),
    };
    let header = |name: &str| view.request_header(name);
    let Some(refused) = cross_origin::check(Guarded::Method(method), None, header, || false) else {
        return act(outcome(selected, Some(enforcement), logs));
    };
    let request = Request {
        method,
        ..Request::default()
    };
    let mut decision = Decision {
        kind: Kind::Actual,
        refusal: None,
        action: Action::Pass,
    };
    let enforce = policy.cross_origin_protection == Protection::Enforce;
    decision::refuse_cross_origin(&policy, &request, &mut decision, refused, enforce);
    conclude(
        selected,
        &policy,
        enforcement,
        &request,
        decision,
        !enforce,
        view,
        logs,
        act,
    )
}

/// The selected policy and how `filter_enabled` / `shadow_enabled` treat this request; `None`
/// when no policy applies.
fn enforce(selected: &Selected, view: &impl HostView) -> Option<(Arc<Policy>, Enforcement)> {
    let Selected::Policy(policy, _) = selected else {
        return None;
    };
    let enforcement = if policy
        .filter_enabled
        .includes(roll(view, policy.filter_enabled.is_partial()))
    {
        Enforcement::Enforced
    } else if policy
        .shadow_enabled
        .includes(roll(view, policy.shadow_enabled.is_partial()))
    {
        Enforcement::Shadow
    } else {
        Enforcement::Disabled
    };
    Some((policy.clone(), enforcement))
}

fn outcome(
    selected: Selected<'_>,
    enforcement: Option<Enforcement>,
    logs: Vec<(LogLevel, String)>,
) -> Outcome<'_> {
    Outcome {
        selected,
        enforcement,
        verdict: None,
        action: Action::Pass,
        logs,
    }
}

/// The route's own configuration (native), then route metadata, then `routes[route name]`,
/// then `virtual_hosts[virtual host name]`, then `policy`. Names are read only when the
/// configuration keys on them.
fn select<'c>(
    config: &'c Config,
    metadata: &MetadataCache,
    view: &impl HostView,
    logs: &mut Vec<(LogLevel, String)>,
) -> Selected<'c> {
    match view.route_config() {
        Some(RouteConfig::Policy(policy)) => {
            return Selected::Policy(policy.clone(), Source::PerRoute)
        }
        Some(RouteConfig::Off) => return Selected::Off(Source::PerRoute),
        Some(RouteConfig::Inherit) | None => {}
    }
    if let Some(namespace) = &config.metadata_namespace {
        match metadata_policy(metadata, namespace, view, logs) {
            MetadataPolicy::Absent => {}
            MetadataPolicy::Policy(p) => {
                return Selected::Policy(p, Source::RouteMetadata(namespace))
            }
            MetadataPolicy::Invalid(e) => return Selected::Invalid(e),
        }
    }
    let route = config
        .needs_route_name()
        .then(|| view.route_name())
        .flatten();
    let vhost = config
        .needs_virtual_host_name()
        .then(|| view.virtual_host_name())
        .flatten();
    match config.select(utf8(&route), utf8(&vhost)) {
        None => Selected::Nothing,
        Some((Some(policy), source)) => Selected::Policy(policy.clone(), source),
        Some((None, source)) => Selected::Off(source),
    }
}

fn utf8(bytes: &Option<Vec<u8>>) -> Option<&str> {
    bytes.as_deref().and_then(|b| std::str::from_utf8(b).ok())
}

fn metadata_policy(
    cache: &MetadataCache,
    namespace: &str,
    view: &impl HostView,
    logs: &mut Vec<(LogLevel, String)>,
) -> MetadataPolicy {
    let bytes = match view.route_metadata() {
        Some(bytes) if !bytes.is_empty() => bytes,
        _ => {
            return match view.unreadable_route_metadata(namespace) {
                None => MetadataPolicy::Absent,
                Some(why) => unreadable_metadata_policy(cache, namespace, why, view, logs),
            }
        }
    };
    if let Some(known) = cache.get(&bytes) {
        return known;
    }
    // First sight of this route's metadata: log what is wrong with it once, naming the route
    // (one more host call, on this rare path only).
    let decoded = route_metadata::decode(&bytes, namespace);
    if !decoded.warnings.is_empty() || matches!(decoded.policy, MetadataPolicy::Invalid(_)) {
        let route = view.route_name().unwrap_or_default();
        let route = format!("{:?}", String::from_utf8_lossy(&route));
        logs.extend(
            decoded
                .warnings
                .into_iter()
                .map(|w| (LogLevel::Warn, format!("{w} (route {route})"))),
        );
        if let MetadataPolicy::Invalid(e) = &decoded.policy {
            logs.push((
                LogLevel::Error,
                format!("{e} (first seen on route {route})"),
            ));
        }
    }
    cache.insert(bytes, decoded.policy.clone());
    decoded.policy
}

/// CORS off on a route whose metadata the host cannot read; logged at its first request. With
/// no bytes to remember the route by, its name does: the cache key starts with 0xFF, which
/// no serialized `Metadata` does (its fields are 1 and 2), so the two kinds of key never meet.
fn unreadable_metadata_policy(
    cache: &MetadataCache,
    namespace: &str,
    why: &str,
    view: &impl HostView,
    logs: &mut Vec<(LogLevel, String)>,
) -> MetadataPolicy {
    let route = view.route_name().unwrap_or_default();
    let key = [b"\xffunreadable:".as_slice(), &route].concat();
    if let Some(known) = cache.get(&key) {
        return known;
    }
    let error = format!(
        "route metadata filter_metadata.{namespace} cannot be read here ({why}), CORS is off on this route"
    );
    logs.push((
        LogLevel::Error,
        format!(
            "{error} (first seen on route {:?})",
            String::from_utf8_lossy(&route)
        ),
    ));
    let policy = MetadataPolicy::Invalid(error.into());
    cache.insert(key, policy.clone());
    policy
}

/// A random number when `needed` (a partial share), else 0, which every non-zero share
/// includes.
fn roll(view: &impl HostView, needed: bool) -> u32 {
    if needed {
        view.random()
    } else {
        0
    }
}

#[cfg(test)]
mod tests;
