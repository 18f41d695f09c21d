//! Arbitrary bytes as the plugin configuration: JSON text, protobuf Struct wire bytes, or
//! neither. `Config::from_bytes` must return Ok or an error naming a path, never panic, and
//! whatever it accepts must decide requests without breaking an invariant.
#![no_main]

use cors_core::config::Config;
use cors_core::decision::{decide, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = Config::from_bytes(data) else {
        return;
    };
    let policies = config
        .default
        .iter()
        .chain(config.routes.values().flatten())
        .chain(config.virtual_hosts.values().flatten());
    for policy in policies {
        for origin in [
            &b"https://app.example.com"[..],
            b"null",
            b"https://evil.net",
        ] {
            let r = Request {
                origin,
                method: b"OPTIONS",
                request_method: Some(b"PUT"),
                request_headers: Some(b"x-a, authorization"),
                private_network: true,
            };
            cors_filter_fuzz::check_decision(policy, &r, &decide(policy, &r));
        }
    }
});
