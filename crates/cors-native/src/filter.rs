//! The filter over the ABI: a configuration per `filter_config`, a filter per stream that runs
//! `cors_core::pipeline` on the request headers, acts on its `Outcome`, keeps the `ResponsePlan` and
//! applies its edits to whatever response comes (the upstream's, a later filter's local reply,
//! or, unlike Wasm, an earlier filter's local reply).

use crate::abi::{self, Attribute, ConfigHandle, HeaderMap, LogLevel, Stream};
use cors_core::config::Config;
use cors_core::pipeline::{self, Action, HostView, LogLevel as PipelineLogLevel, ResponsePlan};
use cors_core::random::Xorshift;
use cors_core::route_metadata::MetadataCache;
use cors_core::stats;
use std::cell::{Cell, RefCell};

/// The only filter this module has (`filter_name`).
pub const FILTER_NAME: &[u8] = b"cors";

/// What `on_http_filter_config_new` makes of one `filter_config`; shared by every worker.
pub struct FilterConfig {
    config: Config,
    /// Envoy's counter id for each of `stats::names()`, `None` where defining it failed.
    counters: Vec<Option<usize>>,
}

impl FilterConfig {
    /// Parses the configuration (JSON text: Envoy hands a `Struct` over as JSON) and defines
    /// the counters. The error is the line to log; Envoy then refuses the configuration.
    pub fn new(handle: &ConfigHandle, name: &[u8], bytes: &[u8]) -> Result<FilterConfig, String> {
        if name != FILTER_NAME {
            return Err(format!(
                "unknown filter_name {:?}: this module's filter is \"cors\"",
                String::from_utf8_lossy(name)
            ));
        }
        let config =
            Config::from_bytes(bytes).map_err(|e| format!("invalid plugin configuration: {e}"))?;
        for warning in &config.warnings {
            abi::log(LogLevel::Warn, warning);
        }
        let counters = stats::names()
            .map(|name| {
                let id = handle.define_counter(&name);
                if id.is_none() {
                    abi::log(LogLevel::Warn, &format!("cannot define counter {name}"));
                }
                id
            })
            .collect();
        Ok(FilterConfig { config, counters })
    }
}

// Envoy makes a configuration on its main thread and uses it from every worker thread.
const _: fn() = || {
    fn shared_across_threads<T: Send + Sync>() {}
    shared_across_threads::<FilterConfig>();
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

/// Where the pipeline runs: in the request hook it may answer; in the response hook only the
/// response is ours to decorate.
#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Request,
    Response,
}

impl<'c> Filter<'c> {
    pub fn new(config: &'c FilterConfig) -> Self {
        Filter {
            config,
            decided: Cell::new(false),
            plan: RefCell::new(None),
        }
    }

    /// Runs the pipeline; returns the request-headers status for Envoy.
    pub fn on_request_headers(&self, stream: &Stream) -> u32 {
        self.decide(stream, Phase::Request)
    }

    /// Applies the `ResponsePlan`'s edits to the response headers, whoever produced them. When an
    /// earlier filter answered the request (a jwt_authn 401), the request hook never ran:
    /// the pipeline runs now (request headers are still readable here, unlike in Wasm), and an
    /// actual request's response gets its CORS headers. A preflight answered that way fails in
    /// the browser whatever it carries (not a 2xx), so it gets none.
    pub fn on_response_headers(&self, stream: &mut Stream) {
        if !self.decided.get() {
            self.decide(stream, Phase::Response);
        }
        let plan = self.plan.borrow();
        let Some(plan) = plan.as_ref() else {
            return;
        };
        let edits = {
            let existing: Vec<(&[u8], &[u8])> = stream
                .headers(HeaderMap::Response)
                .into_iter()
                .filter(|(n, _)| ResponsePlan::reads(n))
                .collect();
            plan.response_edits(&existing)
        };
        for (name, value) in edits {
            stream.set_header(HeaderMap::Response, name, value.as_deref());
        }
    }

    /// One pass of the pipeline: logs, counts, answers (request phase only) or keeps the
    /// `ResponsePlan`. Returns the request-headers status.
    fn decide(&self, stream: &Stream, phase: Phase) -> u32 {
        self.decided.set(true);
        let config = self.config;
        let view = NativeView { stream };
        let (status, plan) = METADATA.with(|metadata| {
            pipeline::on_request(&config.config, metadata, &view, |outcome| {
                for (level, line) in &outcome.logs {
                    let level = match level {
                        PipelineLogLevel::Error => LogLevel::Error,
                        PipelineLogLevel::Warn => LogLevel::Warn,
                        PipelineLogLevel::Debug => LogLevel::Debug,
                    };
                    abi::log(level, line);
                }
                if let Some(Some(id)) = outcome
                    .verdict
                    .as_ref()
                    .and_then(|v| config.counters.get(v.counter))
                {
                    stream.increment_counter(*id);
                }
                match outcome.action {
                    Action::Pass => (abi::CONTINUE, None),
                    Action::Reply { .. } if phase == Phase::Response => (abi::CONTINUE, None),
                    Action::Reply { status, headers } => {
                        let headers: Vec<(&str, &[u8])> =
                            headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
                        stream.answer(status, &headers);
                        (abi::STOP_ITERATION, None)
                    }
                    Action::Forward(plan) => (abi::CONTINUE, Some(plan)),
                }
            })
        });
        *self.plan.borrow_mut() = plan;
        status
    }
}

/// The pipeline's view of one request, over the ABI's callbacks (one each).
struct NativeView<'s, 'h> {
    stream: &'s Stream<'h>,
}

impl HostView for NativeView<'_, '_> {
    fn request_header(&self, name: &str) -> Option<&[u8]> {
        // One cheap callback per header (`:method`, `origin`, on a preflight the three
        // `access-control-request-*`): no VM boundary to amortize by reading them all.
        self.stream.header(HeaderMap::Request, name)
    }

    fn route_name(&self) -> Option<Vec<u8>> {
        self.stream
            .attribute(Attribute::XdsRouteName)
            .map(<[u8]>::to_vec)
    }

    fn virtual_host_name(&self) -> Option<Vec<u8>> {
        self.stream
            .attribute(Attribute::XdsVirtualHostName)
            .map(<[u8]>::to_vec)
    }

    fn route_metadata(&self) -> Option<Vec<u8>> {
        // Envoy 1.40 has no `xds.route_metadata` attribute for modules ("Unsupported attribute
        // ID 62 as string"): see `unreadable_route_metadata`.
        None
    }

    fn unreadable_route_metadata(&self, namespace: &str) -> Option<&'static str> {
        (self.stream.route_metadata_keys(namespace) > 0).then_some(
            "the native module cannot read a policy from route metadata: Envoy 1.40's module ABI \
             has no Struct getter; use the `routes` map, or the Wasm build",
        )
    }

    fn random(&self) -> u32 {
        RANDOM.with(Xorshift::next_u32)
    }

    fn wants_reason(&self) -> bool {
        abi::log_enabled(LogLevel::Debug)
    }
}
