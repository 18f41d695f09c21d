//! The CORS filter as an Envoy dynamic module (`libcors.so`, Envoy 1.40): the hooks Envoy calls,
//! each a thin entry into `filter` behind `guard`. A panic must never unwind into Envoy (the
//! process would abort): it becomes a local 500 on the request path and "continue, untouched"
//! everywhere else. The module is built with `panic = "unwind"` (`make native`, cargo profile
//! `native`) so that `catch_unwind` can catch it.
//!
//! Envoy refuses a module without every one of the 21 hooks below; most do nothing here (a
//! CORS filter needs neither bodies, trailers, callouts nor schedules) and, returning a
//! constant, cannot panic.

#![deny(unsafe_op_in_unsafe_fn)]

mod abi;
mod filter;

use abi::{AbiVersionPtr, ConfigEnvoyPtr, ConfigHandle, EnvoyBuffer, FilterEnvoyPtr, ModulePtr};
use filter::{Filter, FilterConfig};
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null;

/// Runs a hook's body; a panic (already printed by Rust's panic hook) becomes `None` instead
/// of unwinding across `extern "C"`. `AssertUnwindSafe`: after a panic the hooks only fall
/// back (500, or continue); the filter's `forward` is a `RefCell`, left consistent by unwinding.
fn guard<R>(body: impl FnOnce() -> R) -> Option<R> {
    catch_unwind(AssertUnwindSafe(body)).ok()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> AbiVersionPtr {
    abi::ABI_VERSION.as_ptr()
}

/// # Safety
/// Envoy calls it with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    config_envoy_ptr: ConfigEnvoyPtr,
    name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> ModulePtr {
    guard(|| {
        // SAFETY: Envoy hands both buffers and the config pointer to this hook, for its length.
        let (handle, name, bytes) = unsafe {
            (
                ConfigHandle::new(config_envoy_ptr),
                name.as_slice(),
                config.as_slice(),
            )
        };
        match FilterConfig::new(&handle, name, bytes) {
            Ok(config) => Box::into_raw(Box::new(config))
                .cast_const()
                .cast::<c_void>(),
            Err(line) => {
                abi::log(abi::LogLevel::Error, &line);
                null()
            }
        }
    })
    .unwrap_or(null())
}

/// # Safety
/// Envoy calls it with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: ModulePtr) {
    guard(|| {
        // SAFETY: `config` is the box `config_new` made; Envoy destroys it once, after every
        // filter made from it (each Envoy filter holds its config).
        drop(unsafe { Box::from_raw(config.cast::<FilterConfig>().cast_mut()) });
    });
}

/// # Safety
/// Envoy calls it with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: ModulePtr,
    _filter_envoy_ptr: FilterEnvoyPtr,
) -> ModulePtr {
    guard(|| {
        // SAFETY: `config` is a live `FilterConfig` (`config_new`), which outlives this filter.
        let config = unsafe { &*config.cast::<FilterConfig>() };
        Box::into_raw(Box::new(Filter::new(config)))
            .cast_const()
            .cast::<c_void>()
    })
    .unwrap_or(null())
}

/// # Safety
/// Envoy calls it with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter: ModulePtr) {
    guard(|| {
        // SAFETY: `filter` is the box `filter_new` made; Envoy destroys it once, last.
        drop(unsafe { Box::from_raw(filter.cast::<Filter>().cast_mut()) });
    });
}

/// # Safety
/// Envoy calls it with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    filter_envoy_ptr: FilterEnvoyPtr,
    filter: ModulePtr,
    _end_of_stream: bool,
) -> u32 {
    let status = guard(|| {
        // SAFETY: Envoy passes this stream and our filter (`filter_new`) for this hook.
        let (stream, filter) = unsafe {
            (
                abi::Stream::enter(filter_envoy_ptr),
                &*filter.cast::<Filter>(),
            )
        };
        filter.on_request_headers(&stream)
    });
    status.unwrap_or_else(|| {
        // SAFETY: as above; the panicked body's borrows are gone.
        let stream = unsafe { abi::Stream::enter(filter_envoy_ptr) };
        stream.send_response(500, "cors_filter_panicked");
        abi::STOP_ITERATION
    })
}

/// # Safety
/// Envoy calls it with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    filter_envoy_ptr: FilterEnvoyPtr,
    filter: ModulePtr,
    _end_of_stream: bool,
) -> u32 {
    // A panic here leaves the response as it is (without CORS headers the browser blocks it).
    guard(|| {
        // SAFETY: Envoy passes this stream and our filter (`filter_new`) for this hook.
        let (mut stream, filter) = unsafe {
            (
                abi::Stream::enter(filter_envoy_ptr),
                &*filter.cast::<Filter>(),
            )
        };
        filter.on_response_headers(&mut stream);
    });
    abi::CONTINUE
}

// The hooks a CORS filter has no use for: each returns "continue" or does nothing.

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _end_of_stream: bool,
) -> u32 {
    abi::CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    _: FilterEnvoyPtr,
    _: ModulePtr,
) -> u32 {
    abi::CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _end_of_stream: bool,
) -> u32 {
    abi::CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _: FilterEnvoyPtr,
    _: ModulePtr,
) -> u32 {
    abi::CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    _: FilterEnvoyPtr,
    _: ModulePtr,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _callout_id: u64,
    _result: u32,
    _headers: *const abi::EnvoyHttpHeader,
    _headers_size: usize,
    _body_chunks: *const EnvoyBuffer,
    _body_chunks_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _stream_id: u64,
    _headers: *const abi::EnvoyHttpHeader,
    _headers_size: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _stream_id: u64,
    _data: *const EnvoyBuffer,
    _data_count: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _stream_id: u64,
    _trailers: *const abi::EnvoyHttpHeader,
    _trailers_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _stream_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _stream_id: u64,
    _reason: u32,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _event_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _: FilterEnvoyPtr,
    _: ModulePtr,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _: FilterEnvoyPtr,
    _: ModulePtr,
) {
}

#[cfg(test)]
mod tests {
    use super::guard;

    #[test]
    fn guard_turns_a_panic_into_none_and_passes_results_through() {
        assert_eq!(guard(|| 7), Some(7));
        let panicked: Option<u32> = guard(|| {
            let empty: Vec<u32> = Vec::new();
            empty[0]
        });
        assert_eq!(panicked, None);
    }
}
