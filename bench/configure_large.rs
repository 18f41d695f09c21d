//! `cargo run --release --example configure_large`: how long the crate's pure configuration
//! parser (what `on_configure` runs) takes on a large config, how much heap it uses, and that
//! the per-request decision does not grow with the number of routes or exact origins. Native
//! code on the host: the Wasm VM in Envoy is slower (bench/run.py also measures it in Envoy).
//! Prints a human line and a `RESULT {json}` line for bench/run.py.

// A benchmark program, not the filter: a panic only stops the measurement.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use cors_core::config::Config;
use cors_core::decision::{self, Request};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static A: Counting = Counting;

const ALLOWED: &str = "https://app.example.com";
const ROUTES: usize = 10_000;
const ORIGINS: usize = 1_000;
const REGEXES: usize = 100;

fn policy_json(origins: usize, regexes: usize) -> String {
    let mut list: Vec<String> = (0..origins.saturating_sub(1))
        .map(|i| format!("\"https://app{i}.example.com\""))
        .collect();
    list.push(format!("\"{ALLOWED}\""));
    let matchers: Vec<String> = (0..regexes)
        .map(|i| {
            format!(
                r#"{{"safe_regex": {{"google_re2": {{}}, "regex": "https://[a-z0-9-]+\\.tenant{i}\\.example\\.org"}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"allow_origins": [{}], "allow_origin_string_match": [{}], "allow_methods": "GET, POST, PUT, DELETE", "allow_headers": "content-type, x-requested-with", "expose_headers": "x-total", "max_age": "600", "allow_credentials": true}}"#,
        list.join(", "),
        matchers.join(", ")
    )
}

/// The same shape as bench/run.py's `large_config`.
fn config_json(routes: usize, origins: usize, regexes: usize) -> String {
    let mut entries: Vec<String> = (0..routes.saturating_sub(1))
        .map(|i| {
            format!(
                r#""route-{i}": {{"allow_origins": ["https://r{i}.example.com"], "max_age": "60"}}"#
            )
        })
        .collect();
    entries.push(format!(r#""api": {}"#, policy_json(origins, regexes)));
    format!(r#"{{"routes": {{{}}}}}"#, entries.join(", "))
}

/// Median ns per (select + decide) for an allowed actual request on route `api`.
fn decide_ns(config: &Config) -> f64 {
    let request = Request {
        origin: ALLOWED.as_bytes(),
        method: b"GET",
        ..Default::default()
    };
    let mut samples = Vec::new();
    for _ in 0..15 {
        let n = 20_000;
        let start = Instant::now();
        for _ in 0..n {
            let Some((Some(policy), _)) = config.select(black_box(Some("api")), None) else {
                return f64::NAN;
            };
            black_box(decision::decide(policy, black_box(&request)));
        }
        samples.push(start.elapsed().as_nanos() as f64 / n as f64);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let text = config_json(ROUTES, ORIGINS, REGEXES);
    let runs = 7;
    let mut times = Vec::new();
    let mut peak = 0;
    let mut retained = 0;
    let mut large = None;
    for _ in 0..runs {
        let before = CURRENT.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let start = Instant::now();
        let parsed = Config::from_bytes(text.as_bytes());
        times.push(start.elapsed().as_secs_f64() * 1e3);
        peak = PEAK.load(Ordering::Relaxed) - before;
        retained = CURRENT.load(Ordering::Relaxed) - before;
        match parsed {
            Ok(c) => large = Some(c),
            Err(e) => {
                eprintln!("large config refused: {e}");
                std::process::exit(1);
            }
        }
        if times.len() < runs {
            large = None;
        }
    }
    times.sort_by(f64::total_cmp);
    let parse_ms = times[times.len() / 2];
    let Some(large) = large else { return };
    let small = match Config::from_bytes(config_json(1, 1, 0).as_bytes()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("small config refused: {e}");
            std::process::exit(1);
        }
    };
    let small_ns = decide_ns(&small);
    let large_ns = decide_ns(&large);
    println!(
        "config: {} bytes, {ROUTES} routes, {ORIGINS} origins, {REGEXES} regexes; parse {parse_ms:.1} ms \
         (median of {runs}); peak heap {:.1} MiB, retained {:.1} MiB; select+decide {small_ns:.0} ns \
         (1 route, 1 origin) vs {large_ns:.0} ns (large)",
        text.len(),
        peak as f64 / 1048576.0,
        retained as f64 / 1048576.0,
    );
    println!(
        "RESULT {{\"config_bytes\": {}, \"routes\": {ROUTES}, \"origins\": {ORIGINS}, \"regexes\": {REGEXES}, \
         \"runs\": {runs}, \"parse_ms_median\": {parse_ms:.3}, \"peak_heap_bytes\": {peak}, \
         \"retained_heap_bytes\": {retained}, \"decide_small_ns\": {small_ns:.1}, \"decide_large_ns\": {large_ns:.1}}}",
        text.len()
    );
}
