//! `cors-explain`: what the CORS filter does with one request under a plugin configuration,
//! why, and what a browser concludes from it. Runs the filter's own pipeline (`cors_core`)
//! with a view built from the command line; a host binary, never in the .wasm.
//! Run `cors-explain --help` for usage.

mod browser;
mod chain;
mod cli;
mod explain;
mod hints;
mod input;
mod report;
mod routes;
mod source;

fn main() {
    std::process::exit(cli::run(std::env::args_os().skip(1)));
}
