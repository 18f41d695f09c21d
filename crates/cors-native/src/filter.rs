//! The filter over a `Host`: a configuration per `filter_config`, a per-route configuration per
//! `typed_per_filter_config` entry, a filter per stream that runs `cors_core::pipeline` on the
//! request headers, acts on its `Action`, keeps the `ResponsePlan` and applies it to whatever
//! response comes (the upstream's, a later filter's local reply, or, unlike Wasm, an earlier
//! filter's local reply). No `unsafe` here: `abi` hands over safe handles.

use crate::host::{Attribute, HeaderLines, HeaderMap, Host};
use cors_core::config::{Config, RouteConfig};
use cors_core::pipeline::{self, Action, HostView, LogLevel, ResponsePlan};
use cors_core::random::Xorshift;
use cors_core::route_metadata::MetadataCache;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The only filter this module has (`filter_name`).
pub const FILTER_NAME: &[u8] = b"cors";

/// `envoy_dynamic_module_type_on_http_filter_request_headers_status` (and the other `_status`
/// enums, whose `Continue` is also 0).
pub const CONTINUE: u32 = 0;
pub const STOP_ITERATION: u32 = 1;

/// What `on_http_filter_config_new` makes of one `filter_config`; shared by every worker.
pub struct FilterConfig {
    config: Config,
    /// Envoy's counter id for each of `Config::counter_names()`, `None` where defining it failed.
    counters: Vec<Option<usize>>,
}

impl FilterConfig {
    /// Parses the configuration (JSON text: Envoy hands a `Struct` over as JSON) and defines
    /// the counters with `define_counter`. Returns the warnings to log with it; the error is
    /// the line to log, and Envoy then refuses the configuration.
    pub fn new(
        name: &[u8],
        bytes: &[u8],
        mut define_counter: impl FnMut(&str) -> Option<usize>,
    ) -> Result<(FilterConfig, Vec<String>), String> {
        check_filter_name(name)?;
        let config =
            Config::from_bytes(bytes).map_err(|e| format!("invalid plugin configuration: {e}"))?;
        let mut warnings = config.warnings.clone();
        let counters = config
            .counter_names()
            .map(|name| {
                let id = define_counter(&name);
                if id.is_none() {
                    warnings.push(format!("cannot define counter {name}"));
                }
                id
            })
            .collect();
        Ok((FilterConfig { config, counters }, warnings))
    }
}

fn check_filter_name(name: &[u8]) -> Result<(), String> {
    if name == FILTER_NAME {
        return Ok(());
    }
    Err(format!(
        "unknown filter_name {:?}: this module's filter is \"cors\"",
        String::from_utf8_lossy(name)
    ))
}

/// How many per-route configurations Envoy holds: while there are none, no stream asks Envoy
/// for one (a host call saved on every request).
static ROUTE_CONFIGS: AtomicUsize = AtomicUsize::new(0);

fn route_configs_exist() -> bool {
    ROUTE_CONFIGS.load(Ordering::Relaxed) > 0
}

/// What `on_http_filter_per_route_config_new` makes of one `typed_per_filter_config` entry.
pub struct PerRoute(RouteConfig);

impl PerRoute {
    /// Parses a per-route `filter_config`. Returns the warnings to log; the error is the line
    /// to log, and Envoy then refuses the whole route configuration.
    pub fn new(name: &[u8], bytes: &[u8]) -> Result<(PerRoute, Vec<String>), String> {
        check_filter_name(name)?;
        let mut warnings = Vec::new();
        let config = RouteConfig::from_bytes(bytes, &mut warnings)
            .map_err(|e| format!("invalid per-route configuration: {e}"))?;
        ROUTE_CONFIGS.fetch_add(1, Ordering::Relaxed);
        Ok((PerRoute(config), warnings))
    }

    pub fn config(&self) -> &RouteConfig {
        &self.0
    }
}

impl Drop for PerRoute {
    fn drop(&mut self) {
        ROUTE_CONFIGS.fetch_sub(1, Ordering::Relaxed);
    }
}

// Envoy makes configurations on its main thread and uses them from every worker thread.
const _: fn() = || {
    fn shared_across_threads<T: Send + Sync>() {}
    shared_across_threads::<FilterConfig>();
    shared_across_threads::<PerRoute>();
};

thread_local! {
    /// The pipeline's route-metadata cache, one per worker (it is not `Sync`). The native
    /// module reads no metadata bytes: the cache only remembers which routes' unreadable
    /// metadata was logged already, shared by the configurations a worker runs.
    static METADATA: MetadataCache = MetadataCache::default();
    /// For partial `filter_enabled` / `shadow_enabled`.
    static RANDOM: Xorshift = Xorshift::from_clock();
}

/// One HTTP stream.
pub struct Filter<'c> {
    config: &'c FilterConfig,
    /// Whether the pipeline ran on this request (in the request hook, or late: see
    /// `on_response_headers`).
    decided: Cell<bool>,
    /// Decided on the request, applied to the response.
    plan: RefCell<Option<ResponsePlan>>,
}

impl<'c> Filter<'c> {
    pub fn new(config: &'c FilterConfig) -> Self {
        Filter {
            config,
            decided: Cell::new(false),
            plan: RefCell::new(None),
        }
    }

    /// The request hook's first step: records that the pipeline runs on the request, and
    /// lends the configuration, which outlives the filter. The hook then runs
    /// `on_request_headers` without holding the filter: Envoy may destroy the filter inside
    /// the answer to a preflight (1.38 and 1.39 do).
    pub fn begin_request(&self) -> &'c FilterConfig {
        self.decided.set(true);
        self.config
    }

    /// The request hook's last step, for a request that was not answered.
    pub fn keep(&self, plan: Option<ResponsePlan>) {
        *self.plan.borrow_mut() = plan;
    }

    /// Applies the `ResponsePlan`'s edits to the response headers, whoever produced them. When
    /// an earlier filter answered the request (a jwt_authn 401), the request hook never ran:
    /// the pipeline runs now (request headers are still readable here, unlike in Wasm), and an
    /// actual request's response gets its CORS headers. A preflight answered that way fails in
    /// the browser whatever it carries (not a 2xx), so it gets none.
    pub fn on_response_headers<'h>(&self, host: &mut impl Host<'h>) {
        if !self.decided.replace(true) {
            let (_, plan) = decide(self.config, host, None, Phase::Response);
            self.keep(plan);
        }
        let plan = self.plan.borrow();
        let Some(plan) = plan.as_ref() else {
            return;
        };
        // Which edited headers the response has, one bit per edit (read before the edits:
        // the response's bytes borrow the host, which the edits change). An edit past the
        // 32nd counts as present: `set_header` is right either way, `add_header` only cheaper.
        let (edits, present) = {
            let existing = host.headers(HeaderMap::Response, ResponsePlan::reads);
            let edits = plan.response_edits(&existing);
            let present = edits
                .iter()
                .enumerate()
                .filter(|(i, (name, _))| {
                    *i >= 32 || existing.iter().any(|(n, _)| *n == name.as_bytes())
                })
                .fold(0u32, |bits, (i, _)| {
                    bits | 1u32.checked_shl(i as u32).unwrap_or(0)
                });
            (edits, present)
        };
        for (i, (name, value)) in edits.into_iter().enumerate() {
            let present = i >= 32 || present & 1u32.checked_shl(i as u32).unwrap_or(0) != 0;
            match value {
                Some(value) if !present => host.add_header(HeaderMap::Response, name, &value),
                value => host.set_header(HeaderMap::Response, name, value.as_deref()),
            }
        }
    }
}

/// The request hook's work between `Filter::begin_request` and `Filter::keep`: judges a
/// preflight by its actual request's route, runs the pipeline, and answers (the last host
/// call) or returns the plan to keep. Returns the request-headers status.
pub fn on_request_headers<'h>(
    config: &FilterConfig,
    host: &mut impl Host<'h>,
) -> (u32, Option<ResponsePlan>) {
    let rerouted = route_of_actual_request(config, host);
    decide(config, host, rerouted, Phase::Request)
}

/// The route a preflight's actual request takes, when the policy can depend on it: `:method`
/// becomes the `Access-Control-Request-Method`, Envoy matches the route again, the route's
/// per-route configuration and name are read, and `:method` is `OPTIONS` again (Envoy matches
/// once more, so a forwarded preflight takes its own route, untouched). `None` for any other
/// request, and when no policy depends on the route: only such preflights pay for it.
fn route_of_actual_request<'h>(
    config: &FilterConfig,
    host: &mut impl Host<'h>,
) -> Option<Rerouted<'h>> {
    let per_route = route_configs_exist();
    if !per_route && !config.config.selects_by_route() {
        return None;
    }
    let method = pipeline::preflight_method(&NativeView::new(host, None))?.to_vec();
    host.set_header(HeaderMap::Request, ":method", Some(&method));
    host.clear_route_cache();
    let rerouted = Rerouted {
        route_config: per_route.then(|| host.route_config()).flatten(),
        route_name: config
            .config
            .needs_route_name()
            .then(|| host.attribute(Attribute::XdsRouteName).map(<[u8]>::to_vec))
            .flatten(),
    };
    host.set_header(HeaderMap::Request, ":method", Some(b"OPTIONS"));
    host.clear_route_cache();
    Some(rerouted)
}

/// What the route of a preflight's actual request says.
struct Rerouted<'h> {
    route_config: Option<&'h RouteConfig>,
    route_name: Option<Vec<u8>>,
}

/// Where the pipeline runs: in the request hook it may answer; in the response hook only the
/// response is ours to decorate.
#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Request,
    Response,
}

/// One pass of the pipeline: logs, counts, answers (request phase only, and as the last host
/// call) or returns the `ResponsePlan`. Returns the request-headers status too.
fn decide<'h>(
    config: &FilterConfig,
    host: &mut impl Host<'h>,
    rerouted: Option<Rerouted<'h>>,
    phase: Phase,
) -> (u32, Option<ResponsePlan>) {
    // The view borrows the host immutably; the answer needs it mutably, so the reply leaves
    // the pipeline as owned bytes only when there is one to send.
    let (status, plan, reply) = METADATA.with(|metadata| {
        let view = NativeView::new(host, rerouted);
        pipeline::on_request(&config.config, metadata, &view, |outcome| {
            for (level, line) in &outcome.logs {
                host.log(*level, line);
            }
            if let Some(Some(id)) = outcome
                .verdict
                .as_ref()
                .and_then(|v| config.counters.get(v.counter))
            {
                host.increment_counter(*id);
            }
            match outcome.action {
                Action::Pass => (CONTINUE, None, None),
                Action::Reply { .. } if phase == Phase::Response => (CONTINUE, None, None),
                Action::Reply { status, headers } => {
                    let reply = Reply::new(status, &headers);
                    (STOP_ITERATION, None, Some(reply))
                }
                Action::Forward(plan) => (CONTINUE, Some(plan), None),
            }
        })
    });
    if let Some(reply) = reply {
        host.answer(reply.status, &reply.headers());
    }
    (status, plan)
}

/// A reply's headers in one buffer (its values borrow the request and the policy, which the
/// answer outlives only as copies).
struct Reply {
    status: u32,
    names: Vec<(&'static str, usize)>,
    values: Vec<u8>,
}

impl Reply {
    fn new<V: AsRef<str>>(status: u32, headers: &[(&'static str, V)]) -> Reply {
        let mut values = Vec::with_capacity(headers.iter().map(|(_, v)| v.as_ref().len()).sum());
        let names = headers
            .iter()
            .map(|(name, value)| {
                values.extend_from_slice(value.as_ref().as_bytes());
                (*name, values.len())
            })
            .collect();
        Reply {
            status,
            names,
            values,
        }
    }

    fn headers(&self) -> Vec<(&str, &[u8])> {
        let mut start = 0;
        self.names
            .iter()
            .map(|&(name, end)| {
                let value = self.values.get(start..end).unwrap_or_default();
                start = end;
                (name, value)
            })
            .collect()
    }
}

/// The prefix of the headers only a preflight is asked for.
const PREFLIGHT_HEADERS: &[u8] = b"access-control-request-";

/// The pipeline's view of one request, over the host's callbacks.
struct NativeView<'v, 'h, H: Host<'h>> {
    host: &'v H,
    rerouted: Option<Rerouted<'h>>,
    /// The request's `access-control-request-*` lines, read at the first ask for one.
    preflight_headers: std::cell::OnceCell<HeaderLines<'v>>,
}

impl<'v, 'h, H: Host<'h>> NativeView<'v, 'h, H> {
    fn new(host: &'v H, rerouted: Option<Rerouted<'h>>) -> Self {
        NativeView {
            host,
            rerouted,
            preflight_headers: std::cell::OnceCell::new(),
        }
    }
}

impl<'h, H: Host<'h>> HostView for NativeView<'_, 'h, H> {
    fn request_header(&self, name: &str) -> Option<&[u8]> {
        // A `get_header` each for `:method` and `origin`, what every request with `Origin` is
        // asked for. A preflight is asked for three `access-control-request-*` (one usually
        // absent, which Envoy finds by scanning the map): one `get_headers` for the three
        // costs less than three `get_header` (callgrind, bench/instructions.py: -1.4k
        // instructions per preflight), but more than the two single reads of every request.
        if !name.as_bytes().starts_with(PREFLIGHT_HEADERS) {
            return self.host.header(HeaderMap::Request, name);
        }
        self.preflight_headers
            .get_or_init(|| {
                self.host
                    .headers(HeaderMap::Request, |n| n.starts_with(PREFLIGHT_HEADERS))
            })
            .iter()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| *v)
    }

    fn route_name(&self) -> Option<Vec<u8>> {
        match &self.rerouted {
            Some(rerouted) => rerouted.route_name.clone(),
            None => self
                .host
                .attribute(Attribute::XdsRouteName)
                .map(<[u8]>::to_vec),
        }
    }

    fn virtual_host_name(&self) -> Option<Vec<u8>> {
        // The same for every method: a virtual host is chosen by authority.
        self.host
            .attribute(Attribute::XdsVirtualHostName)
            .map(<[u8]>::to_vec)
    }

    fn route_metadata(&self) -> Option<Vec<u8>> {
        // Envoy 1.40 has no `xds.route_metadata` attribute for modules ("Unsupported attribute
        // ID 62 as string"): see `unreadable_route_metadata`.
        None
    }

    fn unreadable_route_metadata(&self, namespace: &str) -> Option<&'static str> {
        (self.host.route_metadata_keys(namespace) > 0).then_some(
            "the native module cannot read a policy from route metadata: Envoy 1.40's module ABI \
             has no Struct getter; use a per-route configuration (typed_per_filter_config), the \
             `routes` map, or the Wasm build",
        )
    }

    fn route_config(&self) -> Option<&RouteConfig> {
        match &self.rerouted {
            Some(rerouted) => rerouted.route_config,
            None if route_configs_exist() => self.host.route_config(),
            None => None,
        }
    }

    fn random(&self) -> u32 {
        RANDOM.with(Xorshift::next_u32)
    }

    fn wants_reason(&self) -> bool {
        self.host.log_enabled(LogLevel::Debug)
    }
}

#[cfg(test)]
pub(crate) mod tests;
