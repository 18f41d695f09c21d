//! The floor of any CORS filter built as an Envoy 1.40 dynamic module: one `get_header` for
//! `origin` (none more when it is absent), one for `:method`, a fixed answer to every OPTIONS
//! (`send_response_headers`, the seven headers our module sends for the benchmark's policy),
//! and on the response of every other request with `Origin` the four headers our module adds
//! (`add_header` each). No policy, no counter, no reading of response headers: what is left
//! between this and `libcors.so` is what our module adds, the rest is what any module pays.
//!
//! Self-contained on purpose (no dependency on the project's crates): the 21 hooks Envoy
//! requires are written out here, with the signatures of Envoy 1.40.0's `abi.h` (ABI v0.2.0).
//! Nothing here can panic (no indexing, no unwrap), which the abort-on-panic profile relies on.

use std::ffi::{c_char, c_void};

type FilterEnvoyPtr = *mut c_void;
type ConfigEnvoyPtr = *mut c_void;
type ModulePtr = *const c_void;

/// `envoy_dynamic_module_type_envoy_buffer` / `_module_buffer` (same layout).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Buffer {
    ptr: *const u8,
    length: usize,
}

impl Buffer {
    const fn of(bytes: &'static [u8]) -> Buffer {
        Buffer {
            ptr: bytes.as_ptr(),
            length: bytes.len(),
        }
    }
}

/// `envoy_dynamic_module_type_module_http_header` / `_envoy_http_header` (same layout).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Header {
    key_ptr: *const u8,
    key_length: usize,
    value_ptr: *const u8,
    value_length: usize,
}

impl Header {
    const fn of(key: &'static [u8], value: &'static [u8]) -> Header {
        Header {
            key_ptr: key.as_ptr(),
            key_length: key.len(),
            value_ptr: value.as_ptr(),
            value_length: value.len(),
        }
    }
}

/// `envoy_dynamic_module_type_http_header_type`.
const REQUEST: u32 = 0;
const RESPONSE: u32 = 2;
/// The `_status` enums' continue and stop-iteration.
const CONTINUE: u32 = 0;
const STOP_ITERATION: u32 = 1;

/// What our module answers to the benchmark's allowed preflight (bench/run.py's POLICY), in
/// the order it sends them.
const PREFLIGHT: [(&[u8], &[u8]); 8] = [
    (b":status", b"200"),
    (b"access-control-allow-origin", b"https://app.example.com"),
    (b"access-control-allow-credentials", b"true"),
    (b"access-control-allow-methods", b"GET, POST, PUT, DELETE"),
    (
        b"access-control-allow-headers",
        b"content-type, x-requested-with",
    ),
    (b"access-control-expose-headers", b"x-total"),
    (b"access-control-max-age", b"600"),
    (b"vary", b"Origin"),
];

/// What our module adds to the response of the benchmark's allowed actual request.
const ACTUAL: [(&[u8], &[u8]); 4] = [
    (b"access-control-allow-origin", b"https://app.example.com"),
    (b"access-control-allow-credentials", b"true"),
    (b"access-control-expose-headers", b"x-total"),
    (b"vary", b"Origin"),
];

extern "C" {
    fn envoy_dynamic_module_callback_http_get_header(
        filter_envoy_ptr: FilterEnvoyPtr,
        header_type: u32,
        key: Buffer,
        result_buffer: *mut Buffer,
        index: usize,
        optional_size: *mut usize,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_add_header(
        filter_envoy_ptr: FilterEnvoyPtr,
        header_type: u32,
        key: Buffer,
        value: Buffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_send_response_headers(
        filter_envoy_ptr: FilterEnvoyPtr,
        headers_vector: *mut Header,
        headers_vector_size: usize,
        end_stream: bool,
    );
}

/// One request header's value, copied out only as far as the floor needs: present or not,
/// and whether it is `OPTIONS`.
fn request_header(filter: FilterEnvoyPtr, name: &'static [u8]) -> Option<Buffer> {
    let mut value = Buffer {
        ptr: std::ptr::null(),
        length: 0,
    };
    // SAFETY: `filter` is the stream of the running hook; the key is read during the call;
    // `value` is a valid place; no count wanted (null).
    let found = unsafe {
        envoy_dynamic_module_callback_http_get_header(
            filter,
            REQUEST,
            Buffer::of(name),
            &mut value,
            0,
            std::ptr::null_mut(),
        )
    };
    found.then_some(value)
}

fn is_options(value: Buffer) -> bool {
    if value.ptr.is_null() || value.length != 7 {
        return false;
    }
    // SAFETY: Envoy filled `value` for this hook: `length` readable bytes at `ptr`.
    let bytes = unsafe { std::slice::from_raw_parts(value.ptr, value.length) };
    bytes == b"OPTIONS"
}

/// The per-stream state: whether the response gets the CORS headers.
struct Floor {
    decorate: bool,
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    c"v0.2.0".as_ptr()
}

/// Any non-null pointer is a configuration; this one is never dereferenced.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    _: ConfigEnvoyPtr,
    _name: Buffer,
    _config: Buffer,
) -> ModulePtr {
    std::ptr::NonNull::<c_void>::dangling().as_ptr()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(_: ModulePtr) {}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    _: ModulePtr,
    _: FilterEnvoyPtr,
) -> ModulePtr {
    Box::into_raw(Box::new(Floor { decorate: false }))
        .cast_const()
        .cast()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter: ModulePtr) {
    if !filter.is_null() {
        // SAFETY: `filter_new` made it; Envoy destroys each filter once.
        drop(unsafe { Box::from_raw(filter.cast::<Floor>().cast_mut()) });
    }
}

/// # Safety
/// Envoy calls it with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    envoy: FilterEnvoyPtr,
    filter: ModulePtr,
    _end_of_stream: bool,
) -> u32 {
    if request_header(envoy, b"origin").is_none() {
        return CONTINUE;
    }
    if request_header(envoy, b":method").is_some_and(is_options) {
        let mut headers = PREFLIGHT.map(|(key, value)| Header::of(key, value));
        // SAFETY: live stream; Envoy copies the headers during the call. The filter may be
        // destroyed inside it: nothing touches it afterwards.
        unsafe {
            envoy_dynamic_module_callback_http_send_response_headers(
                envoy,
                headers.as_mut_ptr(),
                headers.len(),
                true,
            )
        };
        return STOP_ITERATION;
    }
    // SAFETY: `filter_new` made it, alive until `filter_destroy`.
    if let Some(floor) = unsafe { filter.cast::<Floor>().cast_mut().as_mut() } {
        floor.decorate = true;
    }
    CONTINUE
}

/// # Safety
/// Envoy calls it with the pointers abi.h describes for this hook.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    envoy: FilterEnvoyPtr,
    filter: ModulePtr,
    _end_of_stream: bool,
) -> u32 {
    // SAFETY: `filter_new` made it, alive until `filter_destroy`.
    if unsafe { filter.cast::<Floor>().as_ref() }.is_some_and(|f| f.decorate) {
        for (key, value) in ACTUAL {
            // SAFETY: live stream; both buffers are read during the call.
            unsafe {
                envoy_dynamic_module_callback_http_add_header(
                    envoy,
                    RESPONSE,
                    Buffer::of(key),
                    Buffer::of(value),
                )
            };
        }
    }
    CONTINUE
}

// The hooks Envoy requires and a CORS filter has no use for.

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _: bool,
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
    _: bool,
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
    _: u64,
    _: u32,
    _: *const Header,
    _: usize,
    _: *const Buffer,
    _: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _: u64,
    _: *const Header,
    _: usize,
    _: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _: u64,
    _: *const Buffer,
    _: usize,
    _: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _: u64,
    _: *const Header,
    _: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _: u64,
    _: u32,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    _: FilterEnvoyPtr,
    _: ModulePtr,
    _: u64,
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
