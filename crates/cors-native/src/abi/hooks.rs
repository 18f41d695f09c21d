//! The functions Envoy calls (`envoy_dynamic_module_on_*` in abi.h), each a thin entry into
//! `filter` behind `guard`. A panic must never unwind into Envoy (the process would abort): it
//! is logged and becomes a local 500 on the request path and "continue, untouched" everywhere
//! else. A null module pointer (Envoy calls a filter's hooks even when `filter_new` failed)
//! makes every hook do nothing.
//!
//! Envoy refuses a module without every one of the 21 HTTP-filter hooks; most do nothing here
//! (a CORS filter needs neither bodies, trailers, callouts nor schedules) and, returning a
//! constant, cannot panic.

use super::{
    envoy_has_this_abi, log, AbiVersionPtr, ConfigEnvoyPtr, ConfigHandle, EnvoyBuffer,
    EnvoyHttpHeader, FilterEnvoyPtr, ModulePtr, Stream, ABI_VERSION, FOR_ENVOY,
};
use crate::filter::{self, Filter, FilterConfig, PerRoute, CONTINUE, STOP_ITERATION};
use crate::host::Host;
use cors_core::pipeline::LogLevel;
use std::any::Any;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null;

/// Runs a hook's body; a panic becomes `None` (and an error line in Envoy's log) instead of
/// unwinding across `extern "C"`. `AssertUnwindSafe`: after a panic the hooks only fall back
/// (500, or continue); the filter's `plan` is a `RefCell`, left consistent by unwinding.
fn guard<R>(body: impl FnOnce() -> R) -> Option<R> {
    catch_unwind(AssertUnwindSafe(body))
        .map_err(|payload| log(LogLevel::Error, &panic_line(payload.as_ref())))
        .ok()
}

fn panic_line(payload: &(dyn Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("cors filter panicked: {message}")
}

/// A module object Envoy hands back: `None` for a null pointer.
///
/// # Safety
/// A non-null `ptr` must be a live `T` that `into_module_ptr` made.
unsafe fn module_ref<'a, T>(ptr: ModulePtr) -> Option<&'a T> {
    // SAFETY: as the caller promised.
    unsafe { ptr.cast::<T>().as_ref() }
}

fn into_module_ptr<T>(object: T) -> ModulePtr {
    Box::into_raw(Box::new(object))
        .cast_const()
        .cast::<c_void>()
}

/// Frees a module object Envoy is done with; a null pointer is nothing to free.
///
/// # Safety
/// A non-null `ptr` must be a `T` that `into_module_ptr` made, not yet freed.
unsafe fn drop_module_ptr<T>(ptr: ModulePtr) {
    if !ptr.is_null() {
        // SAFETY: as the caller promised; Envoy destroys each object once.
        drop(unsafe { Box::from_raw(ptr.cast::<T>().cast_mut()) });
    }
}

/// A configuration made at load, handed to Envoy with its warnings logged; or null, which
/// makes Envoy refuse the configuration, with the reason logged.
fn made_or_logged<T>(made: Result<(T, Vec<String>), String>) -> ModulePtr {
    match made {
        Ok((object, warnings)) => {
            for warning in &warnings {
                log(LogLevel::Warn, warning);
            }
            into_module_ptr(object)
        }
        Err(line) => {
            log(LogLevel::Error, &line);
            null()
        }
    }
}

/// Refuses an Envoy whose ABI differs from the one the bindings were written for (null makes
/// Envoy fail to load the module): it must not run with mismatched signatures. Said on stderr,
/// since such an Envoy's log callback may take other arguments.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> AbiVersionPtr {
    if envoy_has_this_abi() {
        return ABI_VERSION.as_ptr();
    }
    eprintln!(
        "cors filter (libcors.so): this Envoy's dynamic-module ABI is not the one the module was \
         built for; it needs {FOR_ENVOY}. Not loaded."
    );
    null()
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
        made_or_logged(FilterConfig::new(name, bytes, |counter| {
            handle.define_counter(counter)
        }))
    })
    .unwrap_or(null())
}

/// # Safety
/// Envoy calls it with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: ModulePtr) {
    guard(|| {
        // SAFETY: `config` is the `FilterConfig` `config_new` made; Envoy destroys it once,
        // after every filter made from it (each Envoy filter holds its config).
        unsafe { drop_module_ptr::<FilterConfig>(config) }
    });
}

/// `typed_per_filter_config` entries (`DynamicModuleFilterPerRoute`): `name` is the entry's
/// `filter_name`. Null refuses the whole route configuration, as Envoy refuses any invalid
/// per-route configuration.
///
/// # Safety
/// Envoy calls it with the buffers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(
    name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> ModulePtr {
    guard(|| {
        // SAFETY: Envoy hands both buffers to this hook, for its length.
        let (name, bytes) = unsafe { (name.as_slice(), config.as_slice()) };
        made_or_logged(PerRoute::new(name, bytes))
    })
    .unwrap_or(null())
}

/// # Safety
/// Envoy calls it with the pointer `per_route_config_new` returned.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(
    config: ModulePtr,
) {
    guard(|| {
        // SAFETY: `config` is the `PerRoute` `per_route_config_new` made, destroyed once.
        unsafe { drop_module_ptr::<PerRoute>(config) }
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
        let config = unsafe { module_ref::<FilterConfig>(config) }?;
        Some(into_module_ptr(Filter::new(config)))
    })
    .flatten()
    .unwrap_or(null())
}

/// # Safety
/// Envoy calls it with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter: ModulePtr) {
    guard(|| {
        // SAFETY: `filter` is the `Filter` `filter_new` made; Envoy destroys it once, last.
        unsafe { drop_module_ptr::<Filter>(filter) }
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
    // SAFETY: Envoy passes this stream, for this hook.
    let mut stream = unsafe { Stream::enter(filter_envoy_ptr) };
    // SAFETY: `filter` is null or the live `Filter` `filter_new` made for this stream.
    unsafe { request_headers(&mut stream, filter) }
}

/// The request hook's body, for any host. The answer to a preflight is its last host call and
/// no reference to the filter is alive then: Envoy may destroy the filter inside it (1.38
/// and 1.39 do, 1.40 defers it). The filter is reached again only for a request that was
/// not answered.
///
/// # Safety
/// `filter` must be null or a live `Filter` that `into_module_ptr` made, which only the
/// host's `answer` may destroy.
pub(crate) unsafe fn request_headers<'h>(host: &mut impl Host<'h>, filter: ModulePtr) -> u32 {
    let status = guard(|| {
        // SAFETY: as the caller promised; the reference ends with this statement.
        let Some(config) = (unsafe { module_ref::<Filter>(filter) }).map(Filter::begin_request)
        else {
            return CONTINUE;
        };
        let (status, plan) = filter::on_request_headers(config, host);
        if status == CONTINUE {
            // SAFETY: not answered, so the filter is still alive (as the caller promised).
            if let Some(filter) = unsafe { module_ref::<Filter>(filter) } {
                filter.keep(plan);
            }
        }
        status
    });
    status.unwrap_or_else(|| {
        host.send_response(500, "cors_filter_panicked");
        STOP_ITERATION
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
        // SAFETY: Envoy passes this stream and our filter (null, or `filter_new`'s), for this
        // hook.
        let (mut stream, filter) = unsafe {
            (
                Stream::enter(filter_envoy_ptr),
                module_ref::<Filter>(filter),
            )
        };
        if let Some(filter) = filter {
            filter.on_response_headers(&mut stream);
        }
    });
    CONTINUE
}

// The hooks a CORS filter has no use for: each returns "continue" or does nothing.

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _end_of_stream: bool,
) -> u32 {
    CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    _: FilterEnvoyPtr,
    _: ModulePtr,
) -> u32 {
    CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _end_of_stream: bool,
) -> u32 {
    CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _: FilterEnvoyPtr,
    _: ModulePtr,
) -> u32 {
    CONTINUE
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
    _headers: *const EnvoyHttpHeader,
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
    _headers: *const EnvoyHttpHeader,
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
    _trailers: *const EnvoyHttpHeader,
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
mod tests;
