//! The proxy-wasm shell: host I/O around `cors_core::pipeline`. It reads what the pipeline asks
//! for (`WasmView`), sends the reply or remembers the `ResponsePlan`, applies its edits to the
//! response, keeps the counters and flushes them on a timer. Every header is read as bytes
//! (the SDK's string getters panic on non-UTF-8), request headers only in the request phase
//! (reading them in the response phase traps the VM), and nothing here unwraps.

use cors_core::config::Config;
use cors_core::pipeline::{self, HostView, LogLevel, ResponsePlan};
use cors_core::random::Xorshift;
use cors_core::route_metadata::MetadataCache;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel as WasmLogLevel, MetricType};
use std::cell::OnceCell;
use std::rc::Rc;
use std::time::Duration;

mod header_pairs;
mod pending;

use pending::Pending;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(WasmLogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(CorsRoot::default()));
}}

/// What `on_configure` makes: the configuration and what route metadata decoded to under it
/// (per VM: one per worker).
struct FilterConfig {
    config: Config,
    metadata: MetadataCache,
}

#[derive(Default)]
struct CorsRoot {
    filter_config: Option<Rc<FilterConfig>>,
    counts: Rc<Pending>,
    metric_ids: Vec<u32>,
    random: Rc<Xorshift>,
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
            for name in config.counter_names() {
                match hostcalls::define_metric(MetricType::Counter, &name) {
                    Ok(id) => self.metric_ids.push(id),
                    Err(_) => log::warn!("cannot define metric {name}"),
                }
            }
            self.set_tick_period(Duration::from_secs(1));
        }
        if let Ok(since_epoch) = self
            .get_current_time()
            .duration_since(std::time::UNIX_EPOCH)
        {
            self.random.reseed(since_epoch.as_nanos());
        }
        self.filter_config = Some(Rc::new(FilterConfig {
            config,
            metadata: MetadataCache::default(),
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
        let filter_config = self.filter_config.clone()?;
        Some(Box::new(CorsHttp {
            filter_config,
            counts: self.counts.clone(),
            random: self.random.clone(),
            plan: None,
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

struct CorsHttp {
    filter_config: Rc<FilterConfig>,
    counts: Rc<Pending>,
    random: Rc<Xorshift>,
    /// Decided in the request phase, applied to the response (upstream's or a local reply).
    plan: Option<ResponsePlan>,
}

impl Context for CorsHttp {}

impl HttpContext for CorsHttp {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let view = WasmView {
            random: &self.random,
            request_headers: OnceCell::new(),
        };
        let filter_config = &self.filter_config;
        let (action, plan) = pipeline::on_request(
            &filter_config.config,
            &filter_config.metadata,
            &view,
            |outcome| {
                for (level, line) in &outcome.logs {
                    match level {
                        LogLevel::Error => log::error!("{line}"),
                        LogLevel::Warn => log::warn!("{line}"),
                        LogLevel::Debug => log::debug!("{line}"),
                    }
                }
                if let Some(verdict) = &outcome.verdict {
                    self.counts.count(verdict.counter);
                }
                match outcome.action {
                    pipeline::Action::Pass => (Action::Continue, None),
                    pipeline::Action::Reply { status, headers } => {
                        let headers: Vec<(&str, &str)> =
                            headers.iter().map(|(n, v)| (*n, v.as_ref())).collect();
                        // Our own reply also comes through `on_http_response_headers`, and is
                        // left as it is there (no `ResponsePlan`).
                        self.send_http_response(status, headers, None);
                        (Action::Pause, None)
                    }
                    pipeline::Action::Forward(plan) => (Action::Continue, Some(plan)),
                }
            },
        );
        self.plan = plan;
        action
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        // Runs for the upstream's response and for local replies of later filters and of the
        // router (401, 403, 429, 404, 503, direct responses): all are decorated the same way.
        if let Some(plan) = &self.plan {
            // Only the headers the edits look at (CORS headers, Vary), borrowed from the one
            // host call's buffer: no copy per header.
            let headers = HeaderPairs::read(RESPONSE_HEADERS);
            let existing: Vec<(&[u8], &[u8])> = headers
                .iter()
                .filter(|(n, _)| ResponsePlan::reads(n))
                .collect();
            for (name, value) in plan.response_edits(&existing) {
                self.set_http_response_header_bytes(name, value.as_deref());
            }
        }
        Action::Continue
    }
}

/// The pipeline's view of one request, over proxy-wasm host calls (one each).
struct WasmView<'a> {
    random: &'a Xorshift,
    /// Every request header, read at the first lookup.
    request_headers: OnceCell<HeaderPairs>,
}

impl HostView for WasmView<'_> {
    fn request_header(&self, name: &str) -> Option<&[u8]> {
        // One call for `origin`, `:method` and the preflight headers, parsed in place: a larger
        // copy than a single `origin` read, but every path needs `:method` too.
        self.request_headers
            .get_or_init(|| HeaderPairs::read(REQUEST_HEADERS))
            .find(name)
    }

    fn route_name(&self) -> Option<Vec<u8>> {
        hostcalls::get_property(vec!["xds", "route_name"])
            .ok()
            .flatten()
    }

    fn virtual_host_name(&self) -> Option<Vec<u8>> {
        hostcalls::get_property(vec!["xds", "virtual_host_name"])
            .ok()
            .flatten()
    }

    fn route_metadata(&self) -> Option<Vec<u8>> {
        hostcalls::get_property(vec!["xds", "route_metadata"])
            .ok()
            .flatten()
    }

    fn random(&self) -> u32 {
        self.random.next_u32()
    }

    fn wants_reason(&self) -> bool {
        log::log_enabled!(log::Level::Debug)
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
        // `proxy_on_memory_allocate` (a boxed slice of exactly `size` bytes, proxy-wasm =0.2.5
        // is pinned for this), which we own from here on, as the SDK's own `get_map_bytes`
        // does.
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
