//! The CORS filter's pure logic, shared by every host (the proxy-wasm module, the native
//! dynamic module, `cors-explain`):
//! configuration parsing and validation, policy selection, origin matching, the preflight /
//! actual decision, the response header edits and the counters. `pipeline` strings them
//! together behind the `HostView` a host implements. No proxy-wasm, no I/O, no panics.

pub mod config;
pub mod cross_origin;
pub mod decision;
pub mod enablement;
pub mod fields;
pub mod headers;
pub mod istio;
pub mod number;
pub mod origin;
pub mod pipeline;
pub mod policy;
pub mod presets;
pub mod random;
pub mod route_metadata;
pub mod stats;
pub mod string_match;
pub mod structpb;
pub mod token_list;
pub mod vocabulary;
