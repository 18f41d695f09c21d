//! `cors-explain`: what the CORS filter does with one request under a plugin configuration,
//! why, and what a browser concludes from it. Built from the same pure code as the filter
//! (`Config`, `decision::decide`, `decision::response_edits`); a host binary, never in the .wasm.
//! Run `cors-explain --help` for usage.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod cors_explain;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(cors_explain::run(&args));
}
