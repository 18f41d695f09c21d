//! The hooks' bodies against the fake host, with the module objects as raw pointers, as Envoy
//! holds them. `make test` also runs these under valgrind's memcheck (`make native-memcheck`),
//! which reports any read of a filter freed inside `answer`.

use super::*;
use crate::filter::tests::{filter_config, pairs, preflight, FakeHost};
use std::cell::Cell;
use std::sync::Mutex;

/// Envoy's log callbacks, for the test binary (the module's own `guard` logs through them).
static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_log(_level: u32, message: super::super::ModuleBuffer) {
    // SAFETY: the module passes a buffer it owns for the call.
    let bytes = unsafe { std::slice::from_raw_parts(message.ptr, message.length) };
    LOGGED
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(bytes).into_owned());
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_callback_log_enabled(_level: u32) -> bool {
    true
}

const ALLOW_A: &str = r#"{"policy": {"allow_origins": ["https://a.com"]}}"#;

#[test]
fn the_answer_to_a_preflight_is_the_last_thing_the_request_hook_does() {
    let config = filter_config(ALLOW_A);
    let filter = into_module_ptr(Filter::new(&config));
    let freed = std::rc::Rc::new(Cell::new(false));
    let mut host = preflight("https://a.com", "GET");
    // As Envoy 1.38 and 1.39 do: the filter is destroyed inside the answer. Touching it
    // afterwards is a read of freed memory, which memcheck reports.
    host.on_answer = Some(Box::new({
        let freed = freed.clone();
        move || {
            // SAFETY: the filter made above, freed once, here.
            unsafe { drop_module_ptr::<Filter>(filter) };
            freed.set(true);
        }
    }));
    // SAFETY: a live filter, which only `answer` destroys.
    let status = unsafe { request_headers(&mut host, filter) };
    assert_eq!(status, STOP_ITERATION);
    assert!(freed.get());
    assert_eq!(host.answered.as_ref().map(|(s, _)| *s), Some(200));
}

#[test]
fn a_forwarded_request_keeps_its_plan_for_the_response() {
    let config = filter_config(ALLOW_A);
    let filter = into_module_ptr(Filter::new(&config));
    let mut host = FakeHost::request(&[(":method", "GET"), ("origin", "https://a.com")]);
    // SAFETY: a live filter.
    assert_eq!(unsafe { request_headers(&mut host, filter) }, CONTINUE);
    host.response = pairs(&[(":status", "200")]);
    // SAFETY: as above.
    unsafe { module_ref::<Filter>(filter) }
        .unwrap()
        .on_response_headers(&mut host);
    assert_eq!(
        host.header(
            crate::host::HeaderMap::Response,
            "access-control-allow-origin"
        ),
        Some(&b"https://a.com"[..])
    );
    // SAFETY: made above, freed once.
    unsafe { drop_module_ptr::<Filter>(filter) };
}

#[test]
fn a_null_filter_makes_the_request_hook_do_nothing() {
    let mut host = preflight("https://a.com", "GET");
    // SAFETY: null is what Envoy passes when `filter_new` failed.
    assert_eq!(unsafe { request_headers(&mut host, null()) }, CONTINUE);
    assert!(host.calls.borrow().is_empty());
    assert!(host.answered.is_none() && host.local_reply.is_none());
    // SAFETY: null objects are nothing to free.
    unsafe { drop_module_ptr::<Filter>(null()) };
}

#[test]
fn a_panic_in_the_request_hook_becomes_a_500_and_an_error_line() {
    let config = filter_config(ALLOW_A);
    let filter = into_module_ptr(Filter::new(&config));
    let mut host = preflight("https://a.com", "GET");
    host.panic_on = Some("origin");
    // SAFETY: a live filter.
    let status = unsafe { request_headers(&mut host, filter) };
    assert_eq!(status, STOP_ITERATION);
    assert_eq!(
        host.local_reply,
        Some((500, "cors_filter_panicked".to_owned()))
    );
    assert!(LOGGED
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with("cors filter panicked: ") && l.contains("the fake host panics")));
    // SAFETY: made above, freed once.
    unsafe { drop_module_ptr::<Filter>(filter) };
}
