//! The proxy-wasm shell: reads the few request headers a decision needs, calls
//! `decision::decide`, answers preflights, and applies the remembered plan to the response.
//! Every header is read with a `_bytes` getter (the SDK's string getters panic on non-UTF-8),
//! request headers are read only in the request phase, and nothing here unwraps.

use crate::config::Config;
use crate::decision::{self, Action, Request, ResponsePlan};
use crate::header_pairs;
use crate::headers::*;
use crate::policy::Policy;
use crate::stats;
use crate::structpb;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action as WasmAction, ContextType, LogLevel, MetricType};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(CorsRoot::default()));
}}

/// Distinct route-metadata blobs remembered at most; past it the cache starts over.
const METADATA_CACHE_LIMIT: usize = 4096;

/// What one configuration gives every request: the policies and the per-route-metadata cache.
struct Plan {
    config: Config,
    /// Route metadata bytes → the policy decoded from them, once per distinct route config.
    metadata_policies: RefCell<HashMap<Vec<u8>, MetadataPolicy>>,
}

#[derive(Clone)]
enum MetadataPolicy {
    /// The route's metadata has no policy in our namespace: fall back to the plugin config.
    Absent,
    Policy(Rc<Policy>),
    /// The metadata policy is invalid (logged once): CORS is off on that route.
    Invalid,
}

#[derive(Default)]
struct CorsRoot {
    plan: Option<Rc<Plan>>,
    counts: Rc<stats::Pending>,
    metric_ids: Vec<u32>,
    random: Rc<Cell<u64>>,
}

impl Context for CorsRoot {}

impl RootContext for CorsRoot {
    fn on_vm_start(&mut self, _: usize) -> bool {
        sync_log_level();
        true
    }

    fn on_configure(&mut self, _: usize) -> bool {
        sync_log_level();
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let config = match Config::from_bytes(&bytes) {
            Ok(config) => config,
            Err(e) => {
                log::error!("invalid plugin configuration: {e}");
                return false;
            }
        };
        for warning in &config.warnings {
            log::warn!("{warning}");
        }
        if self.metric_ids.is_empty() {
            for name in stats::names() {
                match hostcalls::define_metric(MetricType::Counter, &name) {
                    Ok(id) => self.metric_ids.push(id),
                    Err(_) => log::warn!("cannot define metric {name}"),
                }
            }
            self.set_tick_period(Duration::from_secs(1));
        }
        let seed = self
            .get_current_time()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64);
        self.random.set(seed | 1);
        self.plan = Some(Rc::new(Plan {
            config,
            metadata_policies: RefCell::new(HashMap::new()),
        }));
        true
    }

    fn on_tick(&mut self) {
        // Follows a log level changed at run time (admin `/logging?wasm=debug`) within a second.
        sync_log_level();
        for (index, count) in self.counts.drain() {
            if let Some(&id) = self.metric_ids.get(index) {
                let _ = hostcalls::increment_metric(id, count as i64);
            }
        }
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        let plan = self.plan.clone()?;
        Some(Box::new(CorsHttp {
            plan,
            counts: self.counts.clone(),
            random: self.random.clone(),
            pending: Pending::Nothing,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Takes Envoy's log level for Wasm, so that disabled records cost nothing (the SDK's logger
/// would otherwise format them and make a host call each).
fn sync_log_level() {
    if let Ok(level) = hostcalls::get_log_level() {
        proxy_wasm::set_log_level(level);
    }
}

fn utf8(bytes: &Option<Vec<u8>>) -> Option<&str> {
    bytes.as_deref().and_then(|b| std::str::from_utf8(b).ok())
}

/// What the response phase must do, decided in the request phase.
enum Pending {
    Nothing,
    /// We answered the preflight ourselves; our reply passes through unchanged.
    Answered,
    Respond {
        policy: Rc<Policy>,
        plan: ResponsePlan,
        origin: Vec<u8>,
        reason: Option<String>,
    },
}

struct CorsHttp {
    plan: Rc<Plan>,
    counts: Rc<stats::Pending>,
    random: Rc<Cell<u64>>,
    pending: Pending,
}

impl Context for CorsHttp {}

impl HttpContext for CorsHttp {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> WasmAction {
        // Host calls per request (each crosses the V8 boundary, ~0.1-0.3 us):
        // - no Origin: 1 (this read), then out;
        // - with Origin: + 1 for route metadata (unless `route_metadata_namespace: null`),
        //   + 1 per route / virtual host name only when the config has such maps,
        //   + 1 reading every request header at once (`:method` and the preflight headers),
        //   + 1 for the reply to a preflight answered here.
        let Some(origin) = self.get_http_request_header_bytes(ORIGIN) else {
            return WasmAction::Continue;
        };
        let Some(policy) = self.select_policy() else {
            return WasmAction::Continue;
        };
        let shadow = if policy
            .filter_enabled
            .includes(self.roll(policy.filter_enabled.is_partial()))
        {
            false
        } else if policy
            .shadow_enabled
            .includes(self.roll(policy.shadow_enabled.is_partial()))
        {
            true
        } else {
            return WasmAction::Continue;
        };
        // One call for `:method` and, on an OPTIONS, the three preflight headers: one call
        // fewer than `:method` then the rest on a preflight; one call either way on an actual
        // request (a larger copy than a single `:method` read, parsed in place).
        let all = HeaderPairs::read(REQUEST_HEADERS);
        let find = |name: &str| all.find(name);
        let method = find(":method").unwrap_or_default();
        let is_options = method == b"OPTIONS";
        let request = Request {
            origin: &origin,
            method,
            request_method: find(ACCESS_CONTROL_REQUEST_METHOD).filter(|_| is_options),
            request_headers: find(ACCESS_CONTROL_REQUEST_HEADERS).filter(|_| is_options),
            private_network: is_options
                && find(ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK)
                    .is_some_and(|v| v.eq_ignore_ascii_case(b"true")),
        };
        let decision = decision::decide(&policy, &request);
        self.counts
            .count(stats::index(decision.kind, decision.denial, shadow));
        if let Some(denial) = decision.denial {
            if log::log_enabled!(log::Level::Debug) {
                let mode = if shadow {
                    " (shadow mode: not enforced)"
                } else {
                    ""
                };
                log::debug!(
                    "refused: {}{mode}",
                    decision::reason(&policy, &request, denial)
                );
            }
        }
        if shadow {
            return WasmAction::Continue;
        }
        let (plan, reason) = match decision.action {
            Action::Reply { status, headers } => {
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(n, v)| (*n, v.as_ref())).collect();
                self.send_http_response(status, headers, None);
                self.pending = Pending::Answered;
                return WasmAction::Pause;
            }
            Action::Forward(plan) => {
                let reason = match (decision.denial, policy.debug_reason_header) {
                    (Some(denial), true) => Some(decision::reason(&policy, &request, denial)),
                    _ => None,
                };
                (plan, reason)
            }
        };
        drop(all);
        self.pending = Pending::Respond {
            policy,
            plan,
            origin,
            reason,
        };
        WasmAction::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> WasmAction {
        // Runs for the upstream's response and for local replies of later filters and of the
        // router (401, 403, 429, 404, 503, direct responses): all are decorated the same way.
        // Our own preflight answer also comes through here and is left as it is.
        if let Pending::Respond {
            policy,
            plan,
            origin,
            reason,
        } = &self.pending
        {
            // Only the headers the edits look at (CORS headers, Vary), borrowed from the one
            // host call's buffer: no copy per header.
            let headers = HeaderPairs::read(RESPONSE_HEADERS);
            let existing: Vec<(&[u8], &[u8])> = headers
                .iter()
                .filter(|(n, _)| n.starts_with(b"access-control-") || *n == b"vary")
                .collect();
            for (name, value) in
                decision::response_edits(*plan, policy, origin, reason.as_deref(), &existing)
            {
                self.set_http_response_header_bytes(name, value.as_deref());
            }
        }
        WasmAction::Continue
    }
}

impl CorsHttp {
    /// The request's policy: route metadata, then `routes`, then `virtual_hosts`, then
    /// `policy`. Route and virtual host names are fetched only when the config keys on them.
    fn select_policy(&self) -> Option<Rc<Policy>> {
        let config = &self.plan.config;
        if let Some(namespace) = &config.metadata_namespace {
            match self.metadata_policy(namespace) {
                MetadataPolicy::Absent => {}
                MetadataPolicy::Policy(p) => return Some(p),
                MetadataPolicy::Invalid => return None,
            }
        }
        let route = if config.needs_route_name() {
            self.get_property(vec!["xds", "route_name"])
        } else {
            None
        };
        let vhost = if config.needs_virtual_host_name() {
            self.get_property(vec!["xds", "virtual_host_name"])
        } else {
            None
        };
        let (entry, _) = config.select(utf8(&route), utf8(&vhost))?;
        entry.clone()
    }

    fn metadata_policy(&self, namespace: &str) -> MetadataPolicy {
        let bytes = match self.get_property(vec!["xds", "route_metadata"]) {
            Some(b) if !b.is_empty() => b,
            _ => return MetadataPolicy::Absent,
        };
        if let Some(known) = self.plan.metadata_policies.borrow().get(&bytes) {
            return known.clone();
        }
        let path = format!("route metadata filter_metadata.{namespace}");
        let decoded = match structpb::filter_metadata(&bytes, namespace) {
            Ok(None) => MetadataPolicy::Absent,
            Ok(Some(value)) => {
                let mut warnings = Vec::new();
                match Policy::from_json(&value, &path, &mut warnings) {
                    Ok(policy) => {
                        for w in warnings {
                            log::warn!("{w}");
                        }
                        MetadataPolicy::Policy(Rc::new(policy))
                    }
                    Err(e) => {
                        log::error!(
                            "invalid policy, CORS is off on this route: {e} (first seen on route {})",
                            self.route_name_for_log()
                        );
                        MetadataPolicy::Invalid
                    }
                }
            }
            Err(e) => {
                log::error!(
                    "unreadable {path}, CORS is off on this route: {e} (first seen on route {})",
                    self.route_name_for_log()
                );
                MetadataPolicy::Invalid
            }
        };
        let mut cache = self.plan.metadata_policies.borrow_mut();
        if cache.len() >= METADATA_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(bytes, decoded.clone());
        decoded
    }

    /// The route's name, quoted and escaped, for a log line on a rare path (one host call).
    fn route_name_for_log(&self) -> String {
        let name = self
            .get_property(vec!["xds", "route_name"])
            .unwrap_or_default();
        format!("{:?}", String::from_utf8_lossy(&name))
    }

    /// A random number when `needed` (a partial filter_enabled / shadow_enabled), else 0,
    /// which every non-zero share includes.
    fn roll(&self, needed: bool) -> u32 {
        if !needed {
            return 0;
        }
        // xorshift64: enough to split traffic by percentage.
        let mut x = self.random.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random.set(x);
        (x >> 32) as u32
    }
}

/// `proxy_get_header_map_pairs` map types (proxy-wasm ABI 0.2.1).
const REQUEST_HEADERS: u32 = 0;
const RESPONSE_HEADERS: u32 = 2;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
}

/// Every header of a map in one host call, kept as the host's serialization and read in
/// place (`header_pairs`): the SDK's `get_http_*_headers_bytes` would allocate a `String` and a
/// `Vec` per header (and panic on a non-Ok status, which this turns into "no headers").
struct HeaderPairs {
    buf: Vec<u8>,
}

impl HeaderPairs {
    fn read(map_type: u32) -> HeaderPairs {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        // SAFETY: the host writes a buffer it allocated through the SDK's
        // `proxy_on_memory_allocate` (a boxed slice of exactly `size` bytes), which we own
        // from here on, as the SDK's own `get_map_bytes` does.
        let buf = unsafe {
            if proxy_get_header_map_pairs(map_type, &mut data, &mut size) != 0 || data.is_null() {
                Vec::new()
            } else {
                Vec::from_raw_parts(data, size, size)
            }
        };
        HeaderPairs { buf }
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        header_pairs::iter(&self.buf)
    }

    fn find(&self, name: &str) -> Option<&[u8]> {
        header_pairs::find(&self.buf, name)
    }
}
