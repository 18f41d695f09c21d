//! Any policy the parser accepts, and a request made of arbitrary header names and values
//! (bytes, repeated headers, any method), read the way the proxy-wasm shell reads them: the
//! decision and the response edits must keep every invariant of `check_decision` /
//! `check_edits` (no ACAO for an unmatched origin, no `*` with credentials, only valid
//! header values), also after `cross_origin_protection` has had its say (as the pipeline
//! applies it: never to an allowed origin, a 403 without CORS headers).
#![no_main]

use arbitrary::Arbitrary;
use cors_core::cross_origin::{self, Protection};
use cors_core::decision::{decide, refuse_cross_origin, response_edits, Action, Request};
use cors_core::headers::trim_ows;
use cors_core::policy::Policy;
use cors_core::stats;
use cors_filter_fuzz::{check_decision, check_edits, valid_header_value, ArbPolicy, Str};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    policy: ArbPolicy,
    method: Vec<u8>,
    /// A first `Origin`: a string of the pool (or the fuzzer's) followed by arbitrary bytes.
    origin: Option<(Str, Vec<u8>)>,
    headers: Vec<(Str, Vec<u8>)>,
    /// Envoy gives the first value of a repeated header, or (some paths) all joined by ",".
    join_repeated: bool,
    upstream: Vec<(Str, Vec<u8>)>,
}

const NAMES: [&str; 9] = [
    "origin",
    "sec-fetch-site",
    ":authority",
    "upgrade",
    "access-control-request-method",
    "access-control-request-headers",
    "access-control-request-private-network",
    "vary",
    "access-control-allow-origin",
];

fn name(s: &Str) -> String {
    match s {
        Str::Pool(i) => NAMES[usize::from(*i) % NAMES.len()].to_owned(),
        Str::Own(s) => s.to_ascii_lowercase(),
    }
}

fuzz_target!(|input: Input| {
    let Ok(policy) = Policy::from_json(&input.policy.value(), "policy", &mut Vec::new()) else {
        return;
    };
    // Envoy trims surrounding whitespace of header values.
    let first = input.origin.iter().map(|(head, tail)| {
        (
            "origin".to_owned(),
            [head.value().as_bytes(), tail].concat(),
        )
    });
    let headers: Vec<(String, Vec<u8>)> = first
        .chain(input.headers.iter().map(|(n, v)| (name(n), v.clone())))
        .map(|(n, v)| (n, trim_ows(&v).to_vec()))
        .collect();
    let get = |n: &str| -> Option<Vec<u8>> {
        let mut values = headers
            .iter()
            .filter(|(h, _)| h == n)
            .map(|(_, v)| v.clone());
        if input.join_repeated {
            let all: Vec<Vec<u8>> = values.collect();
            (!all.is_empty()).then(|| all.join(&b","[..]))
        } else {
            values.next()
        }
    };
    let Some(origin) = get("origin") else { return };
    let arm = get("access-control-request-method");
    let arh = get("access-control-request-headers");
    let request = Request {
        origin: &origin,
        method: &input.method,
        request_method: arm.as_deref(),
        request_headers: arh.as_deref(),
        private_network: get("access-control-request-private-network")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"true")),
    };
    let mut decision = decide(&policy, &request);
    let site = get("sec-fetch-site");
    let authority = get(":authority");
    let upgrade = get("upgrade");
    let header = |n: &str| match n {
        "sec-fetch-site" => site.as_deref(),
        ":authority" => authority.as_deref(),
        "upgrade" => upgrade.as_deref(),
        _ => None,
    };
    if policy.cross_origin_protection != Protection::Off {
        let trusted = decision.refusal.is_none();
        let refused = cross_origin::guarded(&input.method, header)
            .and_then(|g| cross_origin::check(g, Some(&origin), header, || trusted));
        if let Some(refused) = refused {
            let enforce = policy.cross_origin_protection == Protection::Enforce;
            refuse_cross_origin(&policy, &request, &mut decision, refused, enforce);
        }
    }
    check_decision(&policy, &request, &decision);
    let _ = stats::index(decision.kind, decision.refusal, false);
    if let Some(d) = decision.refusal {
        let reason = cors_core::decision::reason(&policy, &request, d);
        assert!(valid_header_value(reason.as_bytes()), "reason {reason:?}");
    }
    if let Action::Forward(plan) = decision.action {
        let upstream: Vec<(String, Vec<u8>)> = input
            .upstream
            .iter()
            .map(|(n, v)| (name(n), trim_ows(v).to_vec()))
            .filter(|(_, v)| valid_header_value(v))
            .collect();
        let reason = decision
            .refusal
            .filter(|_| policy.debug_reason_header)
            .map(|d| cors_core::decision::reason(&policy, &request, d));
        let edits = response_edits(plan, &policy, &origin, reason.as_deref(), &upstream);
        check_edits(&policy, &request, plan, &edits);
    }
});
