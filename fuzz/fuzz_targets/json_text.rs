//! Arbitrary bytes as JSON text: the filter's own parser (`json_text::parse`) must accept and
//! refuse exactly what `serde_json::from_slice::<Value>` does, and give the same value: equal,
//! and printed the same (which tells u64, i64 and f64 apart, and every float's bits). The
//! property tests in `crates/cors-core/tests/json_text_equals_serde_json.rs` check the same on
//! generated JSON.
#![no_main]

use cors_core::json_text::parse;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let ours = parse(data);
    let theirs = serde_json::from_slice::<Value>(data);
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => assert!(
            a == b && format!("{a}") == format!("{b}"),
            "{:?}: ours {a}, serde_json {b}",
            String::from_utf8_lossy(data)
        ),
        (Err(_), Err(_)) => {}
        _ => panic!(
            "{:?}: ours {ours:?}, serde_json {theirs:?}",
            String::from_utf8_lossy(data)
        ),
    }
});
