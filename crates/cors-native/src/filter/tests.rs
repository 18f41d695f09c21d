//! The filter against a fake host: a request's headers, a route table that Envoy matches
//! lazily (again after `clear_route_cache`, against the current `:method`), and a record of
//! every host call. Named after the behaviour each test pins.

use super::*;
use crate::host::HeaderLines;
use std::cell::RefCell;

/// One route of the fake table: the method it matches (`None`: any), its name, and its
/// per-route configuration.
pub struct FakeRoute<'a> {
    pub method: Option<&'static str>,
    pub name: &'static str,
    pub config: Option<&'a RouteConfig>,
}

/// Owned header pairs, as the fake host holds its maps and records an answer.
pub type Headers = Vec<(String, Vec<u8>)>;

pub fn pairs(headers: &[(&str, &str)]) -> Headers {
    headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
        .collect()
}

#[derive(Default)]
pub struct FakeHost<'a> {
    pub request: Headers,
    pub response: Headers,
    pub routes: Vec<FakeRoute<'a>>,
    /// The route matched for the current `:method`, until the cache is cleared.
    matched: Cell<Option<Option<usize>>>,
    pub calls: RefCell<Vec<String>>,
    /// Every header lookup (`header`), a host call each in Envoy.
    pub reads: RefCell<Vec<String>>,
    pub counters: RefCell<Vec<usize>>,
    pub answered: Option<(u32, Headers)>,
    pub local_reply: Option<(u32, String)>,
    /// What else happens inside `answer` (the tests of the hooks free the filter there, as
    /// Envoy 1.38 and 1.39 do).
    pub on_answer: Option<Box<dyn FnMut()>>,
    /// A header whose lookup panics, to drive the hooks' panic path.
    pub panic_on: Option<&'static str>,
}

impl<'a> FakeHost<'a> {
    pub fn request(headers: &[(&str, &str)]) -> Self {
        FakeHost {
            request: pairs(headers),
            ..FakeHost::default()
        }
    }

    fn call(&self, call: impl Into<String>) {
        self.calls.borrow_mut().push(call.into());
    }

    fn route(&self) -> Option<&FakeRoute<'a>> {
        let index = match self.matched.get() {
            Some(index) => index,
            None => {
                let method = self
                    .request
                    .iter()
                    .find(|(n, _)| n == ":method")
                    .map(|(_, v)| v.as_slice());
                let index = self
                    .routes
                    .iter()
                    .position(|r| r.method.is_none_or(|m| Some(m.as_bytes()) == method));
                self.matched.set(Some(index));
                index
            }
        };
        self.routes.get(index?)
    }

    fn map(&self, map: HeaderMap) -> &Headers {
        match map {
            HeaderMap::Request => &self.request,
            HeaderMap::Response => &self.response,
        }
    }

    pub fn request_header(&self, name: &str) -> Option<&[u8]> {
        self.header(HeaderMap::Request, name)
    }

    pub fn answered_header(&self, name: &str) -> Option<&str> {
        let (_, headers) = self.answered.as_ref()?;
        headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

impl<'a> Host<'a> for FakeHost<'a> {
    fn header(&self, map: HeaderMap, name: &str) -> Option<&[u8]> {
        assert_ne!(
            self.panic_on,
            Some(name),
            "the fake host panics on this header"
        );
        self.reads.borrow_mut().push(format!("{map:?} {name}"));
        self.map(map)
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    fn headers(&self, map: HeaderMap, keep: fn(&[u8]) -> bool) -> HeaderLines<'_> {
        self.reads.borrow_mut().push(format!("{map:?} (all)"));
        self.map(map)
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_slice()))
            .filter(|(n, _)| keep(n))
            .collect()
    }

    fn set_header(&mut self, map: HeaderMap, name: &'_ str, value: Option<&[u8]>) {
        self.call(format!(
            "set {map:?} {name}: {}",
            value.map_or("(removed)".into(), String::from_utf8_lossy)
        ));
        let headers = match map {
            HeaderMap::Request => &mut self.request,
            HeaderMap::Response => &mut self.response,
        };
        headers.retain(|(n, _)| n != name);
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            headers.push((name.to_owned(), value.to_vec()));
        }
    }

    fn add_header(&mut self, map: HeaderMap, name: &str, value: &[u8]) {
        self.call(format!(
            "add {map:?} {name}: {}",
            String::from_utf8_lossy(value)
        ));
        let headers = match map {
            HeaderMap::Request => &mut self.request,
            HeaderMap::Response => &mut self.response,
        };
        headers.push((name.to_owned(), value.to_vec()));
    }

    fn attribute(&self, attribute: Attribute) -> Option<&[u8]> {
        self.call(format!("attribute {attribute:?}"));
        match attribute {
            Attribute::XdsRouteName => self.route().map(|r| r.name.as_bytes()),
            Attribute::XdsVirtualHostName => Some(b"main"),
        }
    }

    fn route_metadata_keys(&self, _namespace: &str) -> usize {
        self.call("route_metadata_keys");
        0
    }

    fn route_config(&self) -> Option<&'a RouteConfig> {
        self.call("route_config");
        self.route().and_then(|r| r.config)
    }

    fn clear_route_cache(&mut self) {
        self.call("clear_route_cache");
        self.matched.set(None);
    }

    fn increment_counter(&self, id: usize) {
        self.counters.borrow_mut().push(id);
    }

    fn log(&self, _level: LogLevel, _message: &str) {}

    fn log_enabled(&self, _level: LogLevel) -> bool {
        false
    }

    fn answer(&mut self, status: u32, headers: &[(&str, &[u8])]) {
        self.call("answer");
        self.answered = Some((
            status,
            headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.to_vec()))
                .collect(),
        ));
        if let Some(on_answer) = &mut self.on_answer {
            on_answer();
        }
    }

    fn send_response(&mut self, status: u32, details: &str) {
        self.call("send_response");
        self.local_reply = Some((status, details.to_owned()));
    }
}

pub fn filter_config(config: &str) -> FilterConfig {
    let mut next = 0;
    let (config, _) = FilterConfig::new(FILTER_NAME, config.as_bytes(), |_| {
        next += 1;
        Some(next - 1)
    })
    .unwrap();
    config
}

pub fn per_route(config: &str) -> PerRoute {
    PerRoute::new(FILTER_NAME, config.as_bytes()).unwrap().0
}

pub fn preflight(origin: &str, method: &str) -> FakeHost<'static> {
    FakeHost::request(&[
        (":method", "OPTIONS"),
        ("origin", origin),
        ("access-control-request-method", method),
    ])
}

/// The request hook as `abi::hooks` runs it, without the raw pointers.
fn request_hook<'h>(filter: &Filter, host: &mut impl Host<'h>) -> u32 {
    let (status, plan) = on_request_headers(filter.begin_request(), host);
    if status == CONTINUE {
        filter.keep(plan);
    }
    status
}

const DEFAULT_ALLOWS_A: &str =
    r#"{"policy": {"allow_origins": ["https://a.com"], "allow_methods": "GET, PUT"}}"#;

#[test]
fn an_allowed_preflight_is_answered_with_the_policy() {
    let config = filter_config(DEFAULT_ALLOWS_A);
    let filter = Filter::new(&config);
    let mut host = preflight("https://a.com", "PUT");
    assert_eq!(request_hook(&filter, &mut host), STOP_ITERATION);
    assert_eq!(host.answered.as_ref().map(|(s, _)| *s), Some(200));
    assert_eq!(
        host.answered_header("access-control-allow-origin"),
        Some("https://a.com")
    );
    assert_eq!(
        host.answered_header("access-control-allow-methods"),
        Some("GET, PUT")
    );
    assert_eq!(host.answered_header("vary"), Some("Origin"));
    assert_eq!(
        host.calls.borrow().last().map(String::as_str),
        Some("answer")
    );
}

#[test]
fn a_preflight_reads_method_and_origin_alone_and_its_access_control_request_headers_at_once() {
    let config = filter_config(DEFAULT_ALLOWS_A);
    let filter = Filter::new(&config);
    let mut host = FakeHost::request(&[
        (":method", "OPTIONS"),
        ("origin", "https://a.com"),
        ("access-control-request-method", "PUT"),
        ("access-control-request-headers", "x-a"),
    ]);
    request_hook(&filter, &mut host);
    assert_eq!(
        *host.reads.borrow(),
        ["Request :method", "Request origin", "Request (all)"]
    );
    assert_eq!(host.answered.as_ref().map(|(s, _)| *s), Some(200));
}

#[test]
fn nothing_depends_on_the_route_so_a_preflight_is_not_rerouted() {
    let config = filter_config(DEFAULT_ALLOWS_A);
    let filter = Filter::new(&config);
    let mut host = preflight("https://a.com", "PUT");
    request_hook(&filter, &mut host);
    assert!(!host
        .calls
        .borrow()
        .iter()
        .any(|c| c.starts_with("set") || c == "clear_route_cache" || c == "route_config"));
}

#[test]
fn an_allowed_actual_request_gets_acao_on_the_upstreams_response() {
    let config = filter_config(DEFAULT_ALLOWS_A);
    let filter = Filter::new(&config);
    let mut host = FakeHost::request(&[(":method", "GET"), ("origin", "https://a.com")]);
    assert_eq!(request_hook(&filter, &mut host), CONTINUE);
    host.response = pairs(&[(":status", "200")]);
    filter.on_response_headers(&mut host);
    assert_eq!(
        host.header(HeaderMap::Response, "access-control-allow-origin"),
        Some(&b"https://a.com"[..])
    );
}

#[test]
fn a_header_the_response_lacks_is_added_and_one_it_has_is_replaced() {
    let config = filter_config(DEFAULT_ALLOWS_A);
    let filter = Filter::new(&config);
    let mut host = FakeHost::request(&[(":method", "GET"), ("origin", "https://a.com")]);
    request_hook(&filter, &mut host);
    host.response = pairs(&[(":status", "200"), ("vary", "Accept-Encoding")]);
    filter.on_response_headers(&mut host);
    let calls = host.calls.borrow();
    assert!(calls.contains(&"add Response access-control-allow-origin: https://a.com".to_owned()));
    assert!(calls.contains(&"set Response vary: Accept-Encoding, Origin".to_owned()));
}

#[test]
fn an_actual_request_reads_only_its_method_and_origin() {
    let config = filter_config(DEFAULT_ALLOWS_A);
    let filter = Filter::new(&config);
    let mut host = FakeHost::request(&[(":method", "GET"), ("origin", "https://a.com")]);
    request_hook(&filter, &mut host);
    assert_eq!(*host.reads.borrow(), ["Request :method", "Request origin"]);
}

#[test]
fn a_reply_of_an_earlier_filter_is_decided_late_and_decorated() {
    // jwt_authn answered 401 before the module's request hook ran.
    let config = filter_config(DEFAULT_ALLOWS_A);
    let filter = Filter::new(&config);
    let mut host = FakeHost::request(&[(":method", "GET"), ("origin", "https://a.com")]);
    host.response = pairs(&[(":status", "401")]);
    filter.on_response_headers(&mut host);
    assert_eq!(
        host.header(HeaderMap::Response, "access-control-allow-origin"),
        Some(&b"https://a.com"[..])
    );
    // A preflight answered that way gets nothing: the browser fails it whatever it carries.
    let filter = Filter::new(&config);
    let mut host = preflight("https://a.com", "PUT");
    host.response = pairs(&[(":status", "401")]);
    filter.on_response_headers(&mut host);
    assert!(host.answered.is_none());
    assert_eq!(host.response, pairs(&[(":status", "401")]));
}

/// GET, PUT and DELETE on one path, each route with its own per-route policy; no route
/// matches OPTIONS.
fn rest_split<'a>(
    get: &'a PerRoute,
    put: &'a PerRoute,
    delete: &'a PerRoute,
) -> Vec<FakeRoute<'a>> {
    vec![
        FakeRoute {
            method: Some("GET"),
            name: "items-get",
            config: Some(get.config()),
        },
        FakeRoute {
            method: Some("PUT"),
            name: "items-put",
            config: Some(put.config()),
        },
        FakeRoute {
            method: Some("DELETE"),
            name: "items-delete",
            config: Some(delete.config()),
        },
    ]
}

#[test]
fn a_preflight_gets_the_policy_of_the_route_its_actual_request_takes() {
    let config = filter_config("{}");
    let get = per_route(r#"{"allow_origins": ["https://get.com"], "allow_methods": "GET"}"#);
    let put = per_route(r#"{"allow_origins": ["https://put.com"], "allow_methods": "PUT"}"#);
    let delete = per_route("null");
    let filter = Filter::new(&config);
    let mut host = FakeHost {
        routes: rest_split(&get, &put, &delete),
        ..preflight("https://put.com", "PUT")
    };
    assert_eq!(request_hook(&filter, &mut host), STOP_ITERATION);
    assert_eq!(
        host.answered_header("access-control-allow-origin"),
        Some("https://put.com")
    );
    assert_eq!(
        host.answered_header("access-control-allow-methods"),
        Some("PUT")
    );
    assert_eq!(
        *host.calls.borrow(),
        [
            "set Request :method: PUT",
            "clear_route_cache",
            "route_config",
            "set Request :method: OPTIONS",
            "clear_route_cache",
            "answer"
        ]
    );
    assert_eq!(host.request_header(":method"), Some(&b"OPTIONS"[..]));
}

#[test]
fn a_refused_preflight_goes_on_as_options_and_cors_off_routes_pass() {
    let config = filter_config("{}");
    let get = per_route(r#"{"allow_origins": ["https://get.com"]}"#);
    let put = per_route(r#"{"allow_origins": ["https://put.com"]}"#);
    let delete = per_route("null");
    for (origin, method) in [("https://get.com", "PUT"), ("https://put.com", "DELETE")] {
        let filter = Filter::new(&config);
        let mut host = FakeHost {
            routes: rest_split(&get, &put, &delete),
            ..preflight(origin, method)
        };
        assert_eq!(
            request_hook(&filter, &mut host),
            CONTINUE,
            "{origin} {method}"
        );
        assert!(host.answered.is_none());
        assert_eq!(host.request_header(":method"), Some(&b"OPTIONS"[..]));
        // The router matches the OPTIONS request again: the route cache was cleared last.
        assert_eq!(
            host.calls.borrow().last().map(String::as_str),
            Some("clear_route_cache")
        );
    }
}

#[test]
fn actual_requests_are_never_rerouted() {
    let config = filter_config("{}");
    let get = per_route(r#"{"allow_origins": ["https://get.com"]}"#);
    let put = per_route(r#"{"allow_origins": ["https://put.com"]}"#);
    let delete = per_route("null");
    let filter = Filter::new(&config);
    let mut host = FakeHost {
        routes: rest_split(&get, &put, &delete),
        ..FakeHost::request(&[(":method", "GET"), ("origin", "https://get.com")])
    };
    request_hook(&filter, &mut host);
    assert_eq!(*host.calls.borrow(), ["route_config"]);
}

#[test]
fn a_preflight_whose_method_no_route_takes_falls_back_to_the_filter_level_policy() {
    let config = filter_config(DEFAULT_ALLOWS_A);
    let put = per_route(r#"{"allow_origins": ["https://put.com"]}"#);
    let filter = Filter::new(&config);
    let mut host = FakeHost {
        routes: vec![FakeRoute {
            method: Some("PUT"),
            name: "items-put",
            config: Some(put.config()),
        }],
        ..preflight("https://a.com", "PATCH")
    };
    request_hook(&filter, &mut host);
    assert_eq!(
        host.answered_header("access-control-allow-origin"),
        Some("https://a.com")
    );
}

#[test]
fn routes_keyed_by_name_follow_the_actual_requests_route_too() {
    let config = filter_config(
        r#"{"routes": {"items-put": {"allow_origins": ["https://put.com"]}, "items-options": null}}"#,
    );
    let filter = Filter::new(&config);
    let mut host = FakeHost {
        routes: vec![
            FakeRoute {
                method: Some("PUT"),
                name: "items-put",
                config: None,
            },
            FakeRoute {
                method: Some("OPTIONS"),
                name: "items-options",
                config: None,
            },
        ],
        ..preflight("https://put.com", "PUT")
    };
    assert_eq!(request_hook(&filter, &mut host), STOP_ITERATION);
    assert_eq!(
        host.answered_header("access-control-allow-origin"),
        Some("https://put.com")
    );
}

#[test]
fn a_per_route_config_for_another_filter_or_with_a_bad_field_is_refused() {
    let error = PerRoute::new(b"other", b"{}").err().unwrap();
    assert!(error.contains("unknown filter_name \"other\""), "{error}");
    let error = PerRoute::new(FILTER_NAME, br#"{"allow_origins": "x"}"#)
        .err()
        .unwrap();
    assert!(
        error.starts_with("invalid per-route configuration: typed_per_filter_config.allow_origins"),
        "{error}"
    );
}

#[test]
fn a_reply_keeps_every_header_and_value_in_order() {
    let reply = Reply::new(200, &[("a", "1"), ("b", ""), ("c", "three")]);
    assert_eq!(
        reply.headers(),
        [("a", &b"1"[..]), ("b", &b""[..]), ("c", &b"three"[..])]
    );
}

mod arbitrary_bytes {
    //! The shell driven with arbitrary header bytes through the fake host, as the core's fuzz
    //! targets drive the pipeline: it never panics, answers only 200 or 403 (as its last host
    //! call), leaves `:method` as it came, and answers a CORS request with at most one
    //! `Access-Control-Allow-Origin`, `*` or the origin sent.
    use super::*;
    use proptest::prelude::*;

    fn header_value() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"https://put.com".to_vec()),
            Just(b"https://get.com".to_vec()),
            Just(b"PUT".to_vec()),
            Just(b"GET".to_vec()),
            Just(b"OPTIONS".to_vec()),
            Just(b"null".to_vec()),
            Just(b"*".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..24),
        ]
    }

    fn request() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
        let names = prop_oneof![
            Just(":method"),
            Just("origin"),
            Just("access-control-request-method"),
            Just("access-control-request-headers"),
            Just("access-control-request-private-network"),
        ];
        proptest::collection::vec((names, header_value()), 0..7)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn arbitrary_requests_keep_the_shells_invariants(
            request in request(),
            response in proptest::collection::vec(header_value(), 0..3),
            table in 0..3usize,
        ) {
            let config = filter_config(match table {
                0 => DEFAULT_ALLOWS_A,
                1 => r#"{"routes": {"items-put": {"allow_origins": ["https://put.com"], "allow_methods": "*", "allow_headers": "*"}}}"#,
                _ => r#"{"policy": {"allow_origins": ["*"]}, "requests_without_origin": "cache_safe"}"#,
            });
            let put = per_route(r#"{"allow_origins": ["https://put.com"], "allow_credentials": true}"#);
            let off = per_route("null");
            let filter = Filter::new(&config);
            let mut host = FakeHost {
                routes: vec![
                    FakeRoute { method: Some("PUT"), name: "items-put", config: Some(put.config()) },
                    FakeRoute { method: Some("DELETE"), name: "items-delete", config: Some(off.config()) },
                    FakeRoute { method: None, name: "rest", config: None },
                ],
                ..FakeHost::default()
            };
            for (name, value) in &request {
                if host.request_header(name).is_none() {
                    host.request.push(((*name).to_owned(), value.clone()));
                }
            }
            let method_before = host.request_header(":method").map(<[u8]>::to_vec);
            let origin = host.request_header("origin").map(<[u8]>::to_vec);
            let status = request_hook(&filter, &mut host);
            prop_assert_eq!(host.request_header(":method").map(<[u8]>::to_vec), method_before);
            if let Some((code, _)) = &host.answered {
                prop_assert_eq!(status, STOP_ITERATION);
                prop_assert!(*code == 200 || *code == 403);
                let last = host.calls.borrow().last().cloned();
                prop_assert_eq!(last.as_deref(), Some("answer"));
            } else {
                prop_assert_eq!(status, CONTINUE);
                // The upstream sets no ACAO: any on the response is the filter's.
                host.response = response
                    .iter()
                    .map(|v| ("vary".to_owned(), v.clone()))
                    .collect();
                filter.on_response_headers(&mut host);
            }
            let acao: Vec<&[u8]> = match &host.answered {
                Some((_, headers)) => headers
                    .iter()
                    .filter(|(n, _)| n == "access-control-allow-origin")
                    .map(|(_, v)| v.as_slice())
                    .collect(),
                None => host
                    .response
                    .iter()
                    .filter(|(n, _)| n == "access-control-allow-origin")
                    .map(|(_, v)| v.as_slice())
                    .collect(),
            };
            prop_assert!(acao.len() <= 1, "{:?}", acao);
            if let Some(value) = acao.first() {
                prop_assert!(*value == b"*" || Some(value.to_vec()) == origin, "{:?} for {:?}", value, origin);
            }
        }
    }
}
