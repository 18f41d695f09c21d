//! Structured configurations (known field names, any values, wrong types, unknown fields),
//! sent both as JSON text and as protobuf Struct wire bytes: the two encodings must agree
//! (both accepted, or both refused at the same field path), and an error must name a path
//! whenever the problem is inside a field.
#![no_main]

use cors_core::config::Config;
use cors_core::decision::{decide, Request};
use cors_filter_fuzz::{check_decision, encode_struct, ArbConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: ArbConfig| {
    let value = input.value();
    let text = value.to_string();
    let from_json = Config::from_bytes(text.as_bytes());
    let from_struct = Config::from_bytes(&encode_struct(&value));
    match (&from_json, &from_struct) {
        (Ok(a), Ok(b)) => assert_eq!(a.warnings.len(), b.warnings.len()),
        (Err(a), Err(b)) => assert_eq!(a.path, b.path, "{a} / {b}"),
        _ => panic!(
            "encodings disagree on {text}: json {:?} struct {:?}",
            from_json.as_ref().err(),
            from_struct.as_ref().err()
        ),
    }
    let Ok(config) = from_json else { return };
    for policy in config
        .default
        .iter()
        .chain(config.routes.values().flatten())
    {
        for origin in [
            &b"https://app.example.com"[..],
            b"null",
            b"https://a.example.com",
        ] {
            let r = Request {
                origin,
                method: b"GET",
                ..Default::default()
            };
            check_decision(policy, &r, &decide(policy, &r));
        }
    }
});
