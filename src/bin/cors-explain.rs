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

// `cargo build --target wasm32-wasip1` builds every target of the crate, this one included:
// there it is an empty program (serde_yaml is a host-only dependency). The filter module
// (the cdylib) never contains any of this.
#[cfg(not(target_arch = "wasm32"))]
mod cors_explain;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(cors_explain::run(&args));
}

#[cfg(target_arch = "wasm32")]
fn main() {
    eprintln!(
        "cors-explain is a host program: build it with `cargo build --release --bin cors-explain`"
    );
    std::process::exit(2);
}
