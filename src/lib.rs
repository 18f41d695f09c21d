//! A CORS filter for Envoy (proxy-wasm). Everything but `filter` is pure Rust with no
//! proxy-wasm dependency, tested on the host: configuration parsing and validation, origin
//! matching, the preflight/actual decision and the response header edits.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod config;
pub mod decision;
pub mod enablement;
pub mod header_pairs;
pub mod headers;
pub mod json;
pub mod json_text;
pub mod origin;
pub mod policy;
pub mod stats;
pub mod string_match;
pub mod structpb;
pub mod token_list;

#[cfg(target_arch = "wasm32")]
mod filter;
