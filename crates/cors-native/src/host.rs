//! What the filter needs from Envoy for one stream, as a safe trait: `abi::Stream` implements it
//! over the dynamic-module ABI, and the tests implement it with a fake (as Envoy's own SDK puts
//! `EnvoyHttpFilter` between a filter and the ABI). `'h` is the hook: what Envoy hands out
//! lives that long, unless the borrow says otherwise.

use cors_core::config::RouteConfig;
use cors_core::pipeline::LogLevel;

/// `envoy_dynamic_module_type_http_header_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum HeaderMap {
    Request = 0,
    Response = 2,
}

/// The string attributes the filter reads (`envoy_dynamic_module_type_attribute_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Attribute {
    XdsRouteName = 61,
    XdsVirtualHostName = 63,
}

pub trait Host<'h> {
    /// The first value of a header (lower-case name). The bytes borrow the host: a header
    /// change (`&mut self`) ends them.
    fn header(&self, map: HeaderMap, name: &str) -> Option<&[u8]>;
    /// The headers of a map whose (lower-case) name `keep` accepts, in order.
    fn headers(&self, map: HeaderMap, keep: fn(&[u8]) -> bool) -> HeaderLines<'_>;
    /// Sets a header, replacing every value, or removes it (`None`). Envoy also removes a
    /// header set to an empty value.
    fn set_header(&mut self, map: HeaderMap, name: &str, value: Option<&[u8]>);
    /// Adds a header line, keeping any the map has: cheaper than `set_header` for a header the
    /// map does not have (Envoy skips the search for lines to replace).
    fn add_header(&mut self, map: HeaderMap, name: &str, value: &[u8]);
    /// A string attribute of the stream (route name, virtual host name).
    fn attribute(&self, attribute: Attribute) -> Option<&[u8]>;
    /// How many keys the route's `filter_metadata.<namespace>` has (0: none, or no route).
    fn route_metadata_keys(&self, namespace: &str) -> usize;
    /// The most specific per-route configuration of the route the stream matches now (route,
    /// then virtual host, then route configuration). It lives as long as the route table the
    /// stream holds, so longer than any header change.
    fn route_config(&self) -> Option<&'h RouteConfig>;
    /// Makes Envoy match the route again at its next lookup, against the current headers.
    fn clear_route_cache(&mut self);
    /// Adds one to a counter of this stream's configuration.
    fn increment_counter(&self, id: usize);
    fn log(&self, level: LogLevel, message: &str);
    /// Whether Envoy would print a record at `level` (its level can change at run time).
    fn log_enabled(&self, level: LogLevel) -> bool;
    /// Answers the request now with headers only, straight back to the client (as Envoy's own
    /// CORS filter answers preflights). Envoy may destroy the filter inside this call: hooks
    /// call it last.
    fn answer(&mut self, status: u32, headers: &[(&str, &[u8])]);
    /// Answers with an empty local reply (`details`: the response-code detail Envoy logs).
    fn send_response(&mut self, status: u32, details: &str);
}

/// A few lines of one header map, as `Host::headers` picks them: a response's CORS headers
/// and `Vary`, a preflight's `Access-Control-Request-*` (rarely any, never many).
pub type HeaderLines<'a> = Vec<(&'a [u8], &'a [u8])>;
