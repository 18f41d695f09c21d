//! Shared pieces of the fuzz targets: a structured generator of plugin configurations (so the
//! fuzzer reaches deep into policy validation instead of stopping at the JSON parser), a
//! protobuf `Struct` encoder (Envoy's inline-YAML encoding), and the invariants every decision
//! must keep. A broken invariant panics, which libFuzzer reports as a crash.

use arbitrary::Arbitrary;
use cors_core::decision::{Action, Decision, Grant, Refusal, Request};
use cors_core::policy::Policy;
use serde_json::{Map, Number, Value};

/// Strings that matter to a CORS policy; the fuzzer picks them by index or writes its own.
pub const POOL: &[&str] = &[
    "*",
    "null",
    "",
    "https://app.example.com",
    "https://",
    "https://*.example.com",
    "http://localhost:8080",
    "HTTPS://App.Example.com:443",
    "https://app.example.com/",
    "https://user@app.example.com",
    "https://app.example.com:0",
    "https://app.*.com",
    "https://[::1]:8443",
    "https://xn--bcher-kva.example",
    "app.example.com",
    "GET, POST",
    "x-a, X-B",
    "GET, *",
    "BAD METHOD",
    "authorization",
    "content-type",
    "600",
    "-1",
    "ten",
    "(",
    "https://[a-z]+\\.example\\.com",
    ".*",
    "a\r\nb",
    "\u{0}",
    "é",
    "HUNDRED",
    "MILLION",
];

#[derive(Arbitrary, Debug, Clone)]
pub enum Str {
    Pool(u8),
    Own(String),
}

impl Str {
    pub fn value(&self) -> String {
        match self {
            Str::Pool(i) => POOL[usize::from(*i) % POOL.len()].to_owned(),
            Str::Own(s) => s.clone(),
        }
    }
}

/// A JSON value the fuzzer may put where the policy expects something else.
#[derive(Arbitrary, Debug, Clone)]
pub enum Loose {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Str),
    List(Vec<Str>),
    Object(Vec<(Str, Str)>),
}

impl Loose {
    pub fn value(&self) -> Value {
        match self {
            Loose::Null => Value::Null,
            Loose::Bool(b) => Value::Bool(*b),
            Loose::Int(i) => Value::Number((*i).into()),
            Loose::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Loose::Str(s) => Value::String(s.value()),
            Loose::List(l) => Value::Array(l.iter().map(|s| Value::String(s.value())).collect()),
            Loose::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.value(), Value::String(v.value())))
                    .collect(),
            ),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Field<T> {
    Absent,
    Good(T),
    /// Anything at all in this field's place: wrong types, bad values.
    Bad(Loose),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum MatcherKind {
    Exact,
    Prefix,
    Suffix,
    Contains,
    Regex,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Matcher {
    pub kind: MatcherKind,
    pub pattern: Str,
    pub ignore_case: Option<bool>,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Tokens {
    Star,
    Csv(Str),
    List(Vec<Str>),
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Percent {
    pub numerator: u32,
    pub denominator: u8,
    pub runtime_key: Option<Str>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct ArbPolicy {
    pub allow_origins: Field<Vec<Str>>,
    pub allow_origin_string_match: Field<Vec<Matcher>>,
    pub allow_methods: Field<Tokens>,
    pub allow_headers: Field<Tokens>,
    pub expose_headers: Field<Tokens>,
    pub max_age: Field<u32>,
    pub allow_credentials: Field<bool>,
    pub allow_private_network_access: Field<bool>,
    pub forward_not_matching_preflights: Field<bool>,
    pub debug_reason_header: Field<bool>,
    /// `cross_origin_protection`: one of its three values, by the index mod 3.
    pub cross_origin_protection: Field<u8>,
    pub filter_enabled: Field<Percent>,
    pub shadow_enabled: Field<Percent>,
    /// `presets`: each index picks one of the three, mod 3.
    pub presets: Field<Vec<u8>>,
    /// The vocabulary it is written in, by the index mod 4 (see `Form`).
    pub form: u8,
    pub unknown: Option<(Str, Loose)>,
}

/// The vocabularies a policy is pasted in: Envoy's, the Gateway API's, Istio's, Envoy Gateway's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Envoy,
    GatewayApi,
    Istio,
    EnvoyGateway,
}

impl Form {
    pub fn from_index(i: u8) -> Form {
        [Form::Envoy, Form::GatewayApi, Form::Istio, Form::EnvoyGateway][usize::from(i) % 4]
    }
}

/// A policy in Envoy's vocabulary written in `form`: the same values under that vocabulary's
/// names and in its forms (lists as lists; `maxAge` in seconds for the Gateway API, a duration
/// for Istio and Envoy Gateway; origins as `{exact | prefix | regex}` for Istio), and fields
/// the vocabulary lacks dropped. A `Bad` value stays bad, so that refusals are fuzzed too.
pub fn in_form(m: Map<String, Value>, form: Form) -> Value {
    if form == Form::Envoy {
        return Value::Object(m);
    }
    let list = |v: &Value| match v {
        Value::String(s) if s != "*" => Value::Array(
            s.split(',')
                .map(|t| Value::String(t.trim().to_owned()))
                .collect(),
        ),
        Value::String(s) => Value::Array(vec![Value::String(s.clone())]),
        other => other.clone(),
    };
    let duration = |v: &Value| match v {
        Value::Number(n) => Value::String(format!("{n}s")),
        other => other.clone(),
    };
    let mut out = Map::new();
    for (key, v) in &m {
        let (name, value) = match (key.as_str(), form) {
            ("allow_origins", Form::Istio) => (
                "allowOrigins",
                match v {
                    Value::Array(items) => Value::Array(
                        items
                            .iter()
                            .map(|o| serde_json::json!({"exact": o}))
                            .collect(),
                    ),
                    other => other.clone(),
                },
            ),
            ("allow_origin_string_match", Form::Istio) => {
                // Istio's deprecated `allowOrigin`: exact strings.
                let exact = match v {
                    Value::Array(items) => Value::Array(
                        items
                            .iter()
                            .filter_map(|i| i.get("exact").cloned())
                            .collect(),
                    ),
                    other => other.clone(),
                };
                ("allowOrigin", exact)
            }
            ("allow_origins", _) => ("allowOrigins", v.clone()),
            ("allow_methods", _) => ("allowMethods", list(v)),
            ("allow_headers", _) => ("allowHeaders", list(v)),
            ("expose_headers", _) => ("exposeHeaders", list(v)),
            ("max_age", Form::GatewayApi) => ("maxAge", v.clone()),
            ("max_age", _) => ("maxAge", duration(v)),
            ("allow_credentials", _) => ("allowCredentials", v.clone()),
            ("cross_origin_protection", _) => ("crossOriginProtection", v.clone()),
            ("forward_not_matching_preflights", Form::Istio) => (
                "unmatchedPreflights",
                match v {
                    Value::Bool(true) => "FORWARD".into(),
                    Value::Bool(false) => "IGNORE".into(),
                    other => other.clone(),
                },
            ),
            ("presets", _) => ("presets", v.clone()),
            // Envoy's own fields exist in no other vocabulary; an unknown field stays.
            (
                "allow_origin_string_match"
                | "allow_private_network_access"
                | "forward_not_matching_preflights"
                | "debug_reason_header"
                | "filter_enabled"
                | "shadow_enabled",
                _,
            ) => continue,
            (other, _) => {
                out.insert(other.to_owned(), v.clone());
                continue;
            }
        };
        out.insert(name.to_owned(), value);
    }
    Value::Object(out)
}

fn strs(list: &[Str]) -> Value {
    Value::Array(list.iter().map(|s| Value::String(s.value())).collect())
}

fn tokens(t: &Tokens) -> Value {
    match t {
        Tokens::Star => Value::String("*".into()),
        Tokens::Csv(s) => Value::String(s.value()),
        Tokens::List(l) => strs(l),
    }
}

fn percent(p: &Percent) -> Value {
    let mut m = Map::new();
    let denominators = ["HUNDRED", "TEN_THOUSAND", "MILLION", "BILLION"];
    let mut dv = Map::new();
    dv.insert("numerator".into(), p.numerator.into());
    dv.insert(
        "denominator".into(),
        denominators[usize::from(p.denominator) % denominators.len()].into(),
    );
    m.insert("default_value".into(), Value::Object(dv));
    if let Some(k) = &p.runtime_key {
        m.insert("runtime_key".into(), Value::String(k.value()));
    }
    Value::Object(m)
}

fn put<T>(m: &mut Map<String, Value>, key: &str, field: &Field<T>, good: impl Fn(&T) -> Value) {
    match field {
        Field::Absent => {}
        Field::Good(v) => {
            m.insert(key.into(), good(v));
        }
        Field::Bad(l) => {
            m.insert(key.into(), l.value());
        }
    }
}

impl ArbPolicy {
    pub fn value(&self) -> Value {
        let mut m = Map::new();
        put(&mut m, "allow_origins", &self.allow_origins, |l| strs(l));
        put(
            &mut m,
            "allow_origin_string_match",
            &self.allow_origin_string_match,
            |l| {
                Value::Array(
                    l.iter()
                        .map(|mt| {
                            let mut o = Map::new();
                            let p = Value::String(mt.pattern.value());
                            match mt.kind {
                                MatcherKind::Exact => o.insert("exact".into(), p),
                                MatcherKind::Prefix => o.insert("prefix".into(), p),
                                MatcherKind::Suffix => o.insert("suffix".into(), p),
                                MatcherKind::Contains => o.insert("contains".into(), p),
                                MatcherKind::Regex => o.insert(
                                    "safe_regex".into(),
                                    serde_json::json!({"google_re2": {}, "regex": p}),
                                ),
                            };
                            if let Some(ic) = mt.ignore_case {
                                o.insert("ignore_case".into(), ic.into());
                            }
                            Value::Object(o)
                        })
                        .collect(),
                )
            },
        );
        put(&mut m, "allow_methods", &self.allow_methods, tokens);
        put(&mut m, "allow_headers", &self.allow_headers, tokens);
        put(&mut m, "expose_headers", &self.expose_headers, tokens);
        put(&mut m, "max_age", &self.max_age, |n| (*n).into());
        put(&mut m, "allow_credentials", &self.allow_credentials, |b| {
            (*b).into()
        });
        put(
            &mut m,
            "allow_private_network_access",
            &self.allow_private_network_access,
            |b| (*b).into(),
        );
        put(
            &mut m,
            "forward_not_matching_preflights",
            &self.forward_not_matching_preflights,
            |b| (*b).into(),
        );
        put(
            &mut m,
            "debug_reason_header",
            &self.debug_reason_header,
            |b| (*b).into(),
        );
        put(
            &mut m,
            "cross_origin_protection",
            &self.cross_origin_protection,
            |i| ["off", "report", "enforce"][usize::from(*i) % 3].into(),
        );
        put(&mut m, "filter_enabled", &self.filter_enabled, percent);
        put(&mut m, "shadow_enabled", &self.shadow_enabled, percent);
        put(&mut m, "presets", &self.presets, |l| {
            let names = ["grpc-web", "connect", "mcp"];
            Value::Array(
                l.iter()
                    .map(|i| names[usize::from(*i) % names.len()].into())
                    .collect(),
            )
        });
        if let Some((k, v)) = &self.unknown {
            m.insert(k.value(), v.value());
        }
        in_form(m, Form::from_index(self.form))
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub struct ArbConfig {
    pub policy: Option<ArbPolicy>,
    pub routes: Field<Vec<(Str, Option<ArbPolicy>)>>,
    pub virtual_hosts: Field<Vec<(Str, Option<ArbPolicy>)>>,
    pub route_metadata_namespace: Field<Option<Str>>,
}

impl ArbConfig {
    pub fn value(&self) -> Value {
        let mut m = Map::new();
        if let Some(p) = &self.policy {
            m.insert("policy".into(), p.value());
        }
        let map = |l: &Vec<(Str, Option<ArbPolicy>)>| {
            Value::Object(
                l.iter()
                    .map(|(k, p)| (k.value(), p.as_ref().map_or(Value::Null, ArbPolicy::value)))
                    .collect(),
            )
        };
        put(&mut m, "routes", &self.routes, map);
        put(&mut m, "virtual_hosts", &self.virtual_hosts, map);
        put(
            &mut m,
            "route_metadata_namespace",
            &self.route_metadata_namespace,
            |s| s.as_ref().map_or(Value::Null, |s| Value::String(s.value())),
        );
        Value::Object(m)
    }
}

// The protobuf Struct encoding (what Envoy hands over for an inline YAML configuration) is the
// library's own test encoder (feature `struct-encoder`).
pub use cors_core::structpb::encode::encode_struct;

// ---- invariants ----

/// A header value we may put on the wire: visible ASCII, space and tab only (no CR, LF, NUL,
/// other controls or non-ASCII bytes), no leading or trailing whitespace.
pub fn valid_header_value(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
        && !v.first().is_some_and(|b| *b == b' ' || *b == b'\t')
        && !v.last().is_some_and(|b| *b == b' ' || *b == b'\t')
}

/// Checks what a decision says against the policy; panics (a fuzz finding) on a violation.
pub fn check_decision(policy: &Policy, request: &Request, decision: &Decision) {
    let matched = std::str::from_utf8(request.origin)
        .ok()
        .and_then(|o| policy.origins.matches(o, policy.allow_credentials));
    if let Action::Reply { status, headers } = &decision.action {
        assert!(*status == 200 || *status == 403, "status {status}");
        for (name, value) in headers {
            assert!(
                valid_header_value(value.as_bytes()),
                "invalid value for {name}: {value:?}"
            );
        }
        let acao: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| *n == "access-control-allow-origin")
            .map(|(_, v)| v.as_ref())
            .collect();
        assert!(acao.len() <= 1, "several ACAO: {acao:?}");
        if let Some(acao) = acao.first() {
            check_acao(policy, request, acao.as_bytes(), matched.is_some());
        } else {
            assert!(
                headers
                    .iter()
                    .all(|(n, _)| !n.starts_with("access-control-")),
                "CORS headers without ACAO: {headers:?}"
            );
        }
    }
    if matched.is_none() {
        assert!(
            decision.refusal.is_some(),
            "origin {:?} allowed but not matched",
            request.origin
        );
    }
    if let Some(Refusal::CrossOrigin(_)) = decision.refusal {
        // The protection trusts every allowed origin, and its 403 carries no CORS header.
        let visible = request.origin.iter().all(|b| (0x21..0x7f).contains(b));
        assert!(
            matched.is_none() || !visible,
            "cross-origin refusal of an allowed origin"
        );
        assert!(
            !matches!(&decision.action, Action::Reply { status, .. } if *status != 403),
            "a cross-origin refusal answered otherwise than 403"
        );
    }
}

fn check_acao(policy: &Policy, request: &Request, acao: &[u8], matched: bool) {
    assert!(
        matched,
        "ACAO {acao:?} for an origin the policy does not match"
    );
    if acao == b"*" {
        assert!(!policy.allow_credentials, "ACAO * with credentials");
    } else {
        assert_eq!(acao, request.origin, "ACAO is not the request's origin");
    }
}

/// Checks the response edits of a forwarded request.
pub fn check_edits(
    policy: &Policy,
    request: &Request,
    plan: Grant,
    edits: &[(&'static str, Option<std::borrow::Cow<'_, [u8]>>)],
) {
    let matched = std::str::from_utf8(request.origin)
        .ok()
        .and_then(|o| policy.origins.matches(o, policy.allow_credentials))
        .is_some();
    for (name, value) in edits {
        if let Some(v) = value {
            assert!(valid_header_value(v), "invalid edit {name}: {v:?}");
            if *name == "access-control-allow-origin" {
                check_acao(policy, request, v, matched);
            }
        }
        if matches!(plan, Grant::Deny) && name.starts_with("access-control-") {
            assert!(value.is_none(), "a refused response gets {name}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cors_core::policy::Vocabulary;

    /// Every form the generator writes is read, often enough, in the vocabulary it stands for.
    #[test]
    fn the_generator_writes_every_vocabulary() {
        let mut read = [0usize; 4];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..256)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let Ok(p) = ArbPolicy::arbitrary(&mut arbitrary::Unstructured::new(&bytes)) else {
                continue;
            };
            if let Ok(policy) = Policy::from_json(&p.value(), "policy", &mut Vec::new()) {
                let form = Form::from_index(p.form);
                let expected = match form {
                    Form::Envoy => Vocabulary::Envoy,
                    Form::GatewayApi => Vocabulary::GatewayApi,
                    Form::Istio => Vocabulary::Istio,
                    Form::EnvoyGateway => Vocabulary::EnvoyGateway,
                };
                if policy.vocabulary == expected {
                    read[form as usize] += 1;
                }
            }
        }
        assert!(read.iter().all(|&n| n >= 10), "accepted policies per form: {read:?}");
    }
}
