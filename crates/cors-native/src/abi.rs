//! Envoy's dynamic-module ABI, as far as this filter uses it. Written here from the names and
//! signatures of `source/extensions/dynamic_modules/abi/abi.h` in Envoy 1.40.0 (ABI version
//! `v0.2.0`); not generated, and not taken from Envoy's own SDK. Pinned to that version: the
//! signatures move between Envoy releases (1.40's `get_attribute_string` fills an
//! `envoy_buffer`, older headers took `char**, size_t*`), and Envoy loads a module built for
//! 1.40 in 1.40 and 1.41 only. `tests/test_native.py` checks that the 1.40.0 binary exports
//! every callback this module imports.
//!
//! Every `unsafe` of the crate is in this module and `abi/hooks.rs` (the functions Envoy calls):
//! each call into Envoy sits behind a safe wrapper whose borrows encode the header's lifetime
//! rules (what Envoy hands out lives until the end of the current hook, or until the module
//! changes that header map), and `Stream` implements the crate's safe `Host` over them. Each
//! binding names the `abi.h` declaration it mirrors.

pub mod hooks;

use crate::filter::PerRoute;
use crate::host::{Attribute, HeaderLines, HeaderMap, Host};
use cors_core::config::RouteConfig;
use cors_core::pipeline::LogLevel;
use std::ffi::{c_char, c_void, CStr};
use std::marker::PhantomData;

/// What `envoy_dynamic_module_on_program_init` returns; Envoy logs "ABI version v0.2.0
/// matched" for it (another value only logs a warning and loads anyway).
pub const ABI_VERSION: &CStr = c"v0.2.0";

/// A callback that Envoy 1.40 exports and 1.39 does not (checked with `nm -D` on the PyPI
/// wheels 1.39.3 and 1.40.0). Envoy 1.38 and 1.39 export every callback this module imports,
/// with some signatures changed, and load it after a mere warning: its absence is how the
/// module tells that it would run with mismatched signatures.
const ONLY_IN_THIS_ABI: &CStr = c"envoy_dynamic_module_callback_http_get_timing_info";

/// The Envoy this module's bindings are written for, for the refusal's log line.
pub const FOR_ENVOY: &str = "Envoy 1.40 (dynamic-module ABI v0.2.0; 1.41 keeps it)";

/// glibc's `RTLD_DEFAULT`: look a symbol up in the program and every library it loaded.
const RTLD_DEFAULT: *mut c_void = std::ptr::null_mut();

/// Whether the Envoy that loaded the module speaks the ABI its bindings were written for.
pub fn envoy_has_this_abi() -> bool {
    // SAFETY: a lookup by a NUL-terminated name; the result is only compared with null.
    !unsafe { dlsym(RTLD_DEFAULT, ONLY_IN_THIS_ABI.as_ptr()) }.is_null()
}

/// `envoy_dynamic_module_type_http_filter_config_envoy_ptr`.
pub type ConfigEnvoyPtr = *mut c_void;
/// `envoy_dynamic_module_type_http_filter_envoy_ptr`.
pub type FilterEnvoyPtr = *mut c_void;
/// `envoy_dynamic_module_type_http_filter_{,per_route_}config_module_ptr`,
/// `envoy_dynamic_module_type_http_filter_module_ptr`: the module's own objects.
pub type ModulePtr = *const c_void;
/// `envoy_dynamic_module_type_abi_version_module_ptr`.
pub type AbiVersionPtr = *const c_char;

/// `envoy_dynamic_module_type_envoy_buffer`: bytes owned by Envoy.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyBuffer {
    ptr: *const u8,
    length: usize,
}

impl EnvoyBuffer {
    const EMPTY: EnvoyBuffer = EnvoyBuffer {
        ptr: std::ptr::null(),
        length: 0,
    };

    /// The bytes, or an empty slice for Envoy's null buffer.
    ///
    /// # Safety
    /// The buffer must be one Envoy filled for the current hook and still valid for `'a`.
    pub unsafe fn as_slice<'a>(self) -> &'a [u8] {
        if self.ptr.is_null() {
            return &[];
        }
        // SAFETY: non-null; Envoy guarantees `length` readable bytes at `ptr` for as long as
        // the caller promised.
        unsafe { std::slice::from_raw_parts(self.ptr, self.length) }
    }
}

/// `envoy_dynamic_module_type_module_buffer`: bytes owned by the module, read by Envoy during
/// the call only.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleBuffer {
    ptr: *const u8,
    length: usize,
}

impl ModuleBuffer {
    fn of(bytes: &[u8]) -> ModuleBuffer {
        ModuleBuffer {
            ptr: bytes.as_ptr(),
            length: bytes.len(),
        }
    }

    /// Envoy's "no value" (a null pointer): removes a header in `set_header`.
    const NULL: ModuleBuffer = ModuleBuffer {
        ptr: std::ptr::null(),
        length: 0,
    };
}

/// `envoy_dynamic_module_type_envoy_http_header`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyHttpHeader {
    key_ptr: *const u8,
    key_length: usize,
    value_ptr: *const u8,
    value_length: usize,
}

/// An empty slot, for Envoy to fill.
impl Default for EnvoyHttpHeader {
    fn default() -> Self {
        EnvoyHttpHeader {
            key_ptr: std::ptr::null(),
            key_length: 0,
            value_ptr: std::ptr::null(),
            value_length: 0,
        }
    }
}

/// `envoy_dynamic_module_type_module_http_header`.
#[repr(C)]
struct ModuleHttpHeader {
    key_ptr: *const u8,
    key_length: usize,
    value_ptr: *const u8,
    value_length: usize,
}

fn module_header(name: &str, value: &[u8]) -> ModuleHttpHeader {
    ModuleHttpHeader {
        key_ptr: name.as_ptr(),
        key_length: name.len(),
        value_ptr: value.as_ptr(),
        value_length: value.len(),
    }
}

/// `envoy_dynamic_module_type_log_level`: Envoy's spdlog numbers (trace 0 … critical 5).
fn envoy_log_level(level: LogLevel) -> u32 {
    match level {
        LogLevel::Debug => 1,
        LogLevel::Warn => 3,
        LogLevel::Error => 4,
    }
}

/// `envoy_dynamic_module_type_metadata_source_Route`.
const METADATA_SOURCE_ROUTE: u32 = 1;

/// `envoy_dynamic_module_type_metrics_result_Success`.
const METRICS_SUCCESS: u32 = 0;

// The callbacks Envoy implements, exactly as abi.h declares them (C `bool` is Rust `bool`,
// C enums are `int`-sized and passed as `u32`).
extern "C" {
    /// glibc's `dlsym` (dlfcn.h), not Envoy's: for `envoy_has_this_abi`.
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;

    fn envoy_dynamic_module_callback_log(level: u32, message: ModuleBuffer);
    fn envoy_dynamic_module_callback_log_enabled(level: u32) -> bool;
    fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        filter_config_envoy_ptr: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        counter_id_ptr: *mut usize,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter_envoy_ptr: FilterEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_get_header(
        filter_envoy_ptr: FilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        result_buffer: *mut EnvoyBuffer,
        index: usize,
        optional_size: *mut usize,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_get_headers_size(
        filter_envoy_ptr: FilterEnvoyPtr,
        header_type: u32,
    ) -> usize;
    fn envoy_dynamic_module_callback_http_get_headers(
        filter_envoy_ptr: FilterEnvoyPtr,
        header_type: u32,
        result_headers: *mut EnvoyHttpHeader,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_add_header(
        filter_envoy_ptr: FilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_set_header(
        filter_envoy_ptr: FilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_send_response(
        filter_envoy_ptr: FilterEnvoyPtr,
        status_code: u32,
        headers_vector: *mut ModuleHttpHeader,
        headers_vector_size: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );
    fn envoy_dynamic_module_callback_http_get_metadata_keys_count(
        filter_envoy_ptr: FilterEnvoyPtr,
        metadata_source: u32,
        ns: ModuleBuffer,
    ) -> usize;
    fn envoy_dynamic_module_callback_http_send_response_headers(
        filter_envoy_ptr: FilterEnvoyPtr,
        headers_vector: *mut ModuleHttpHeader,
        headers_vector_size: usize,
        end_stream: bool,
    );
    fn envoy_dynamic_module_callback_http_clear_route_cache(filter_envoy_ptr: FilterEnvoyPtr);
    fn envoy_dynamic_module_callback_get_most_specific_route_config(
        filter_envoy_ptr: FilterEnvoyPtr,
    ) -> ModulePtr;
    fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter_envoy_ptr: FilterEnvoyPtr,
        attribute_id: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
}

/// Logs through Envoy's `dynamic_modules` logger (`envoy_dynamic_module_callback_log`).
pub fn log(level: LogLevel, message: &str) {
    // SAFETY: Envoy reads the message during the call only.
    unsafe {
        envoy_dynamic_module_callback_log(
            envoy_log_level(level),
            ModuleBuffer::of(message.as_bytes()),
        )
    }
}

/// Whether Envoy would print a record at `level` (`envoy_dynamic_module_callback_log_enabled`).
pub fn log_enabled(level: LogLevel) -> bool {
    // SAFETY: a plain query without pointers.
    unsafe { envoy_dynamic_module_callback_log_enabled(envoy_log_level(level)) }
}

/// Envoy's side of a filter configuration, during `on_http_filter_config_new`.
pub struct ConfigHandle(ConfigEnvoyPtr);

impl ConfigHandle {
    /// # Safety
    /// `ptr` must be the `filter_config_envoy_ptr` Envoy passed to the running
    /// `on_http_filter_config_new`.
    pub unsafe fn new(ptr: ConfigEnvoyPtr) -> ConfigHandle {
        ConfigHandle(ptr)
    }

    /// `envoy_dynamic_module_callback_http_filter_config_define_counter`, without labels; the id
    /// works with every stream of this config.
    pub fn define_counter(&self, name: &str) -> Option<usize> {
        let mut id = 0usize;
        // SAFETY: `self.0` is Envoy's live config (`new`); the name is read during the call;
        // no labels (null, 0); `id` is a valid place for the result.
        let result = unsafe {
            envoy_dynamic_module_callback_http_filter_config_define_counter(
                self.0,
                ModuleBuffer::of(name.as_bytes()),
                std::ptr::null_mut(),
                0,
                &mut id,
            )
        };
        (result == METRICS_SUCCESS).then_some(id)
    }
}

/// Envoy's side of one HTTP stream, for the length of one hook (`'h`). Header bytes it hands
/// out borrow it; changing a header map needs `&mut`, so no borrowed bytes outlive a change
/// (abi.h: they are "valid until the end of the current event hook unless the setter callback
/// is called").
pub struct Stream<'h> {
    ptr: FilterEnvoyPtr,
    hook: PhantomData<&'h mut ()>,
}

impl Stream<'_> {
    /// # Safety
    /// `ptr` must be the `filter_envoy_ptr` Envoy passed to the running hook, and the
    /// `Stream` must not outlive that hook.
    pub unsafe fn enter(ptr: FilterEnvoyPtr) -> Self {
        Stream {
            ptr,
            hook: PhantomData,
        }
    }
}

impl<'h> Host<'h> for Stream<'h> {
    /// `envoy_dynamic_module_callback_http_get_header`, first value.
    fn header(&self, map: HeaderMap, name: &str) -> Option<&[u8]> {
        let mut value = EnvoyBuffer::EMPTY;
        // SAFETY: live stream (`enter`); the key is read during the call; `value` is a valid
        // place; no count wanted (null).
        let found = unsafe {
            envoy_dynamic_module_callback_http_get_header(
                self.ptr,
                map as u32,
                ModuleBuffer::of(name.as_bytes()),
                &mut value,
                0,
                std::ptr::null_mut(),
            )
        };
        // SAFETY: Envoy filled `value` for this hook; the slice borrows `self`, so it cannot
        // outlive the hook or a header change.
        found.then(|| unsafe { value.as_slice() })
    }

    /// `envoy_dynamic_module_callback_http_get_headers_size`, then
    /// `envoy_dynamic_module_callback_http_get_headers`; only the lines `keep` accepts are
    /// returned (a preflight's or a response's few: usually no second allocation).
    fn headers(&self, map: HeaderMap, keep: fn(&[u8]) -> bool) -> HeaderLines<'_> {
        // SAFETY: live stream (`enter`), no pointers.
        let count =
            unsafe { envoy_dynamic_module_callback_http_get_headers_size(self.ptr, map as u32) };
        let mut raw = vec![EnvoyHttpHeader::default(); count];
        // SAFETY: `raw` has room for the `count` headers Envoy just reported, and nothing
        // changed the map in between.
        if !unsafe {
            envoy_dynamic_module_callback_http_get_headers(self.ptr, map as u32, raw.as_mut_ptr())
        } {
            return HeaderLines::new();
        }
        raw.iter()
            .map(|h| {
                let name = EnvoyBuffer {
                    ptr: h.key_ptr,
                    length: h.key_length,
                };
                let value = EnvoyBuffer {
                    ptr: h.value_ptr,
                    length: h.value_length,
                };
                // SAFETY: Envoy filled both for this hook; they borrow `self` (see `header`).
                unsafe { (name.as_slice(), value.as_slice()) }
            })
            .filter(|(name, _)| keep(name))
            .collect()
    }

    /// `envoy_dynamic_module_callback_http_set_header`: a null value removes the header, and
    /// so does an empty one (Envoy removes a header set to an empty value).
    fn set_header(&mut self, map: HeaderMap, name: &str, value: Option<&[u8]>) {
        let value = value.map_or(ModuleBuffer::NULL, ModuleBuffer::of);
        // SAFETY: live stream (`enter`); both buffers are read during the call. `&mut self`
        // ends every borrow of header bytes Envoy handed out before.
        unsafe {
            envoy_dynamic_module_callback_http_set_header(
                self.ptr,
                map as u32,
                ModuleBuffer::of(name.as_bytes()),
                value,
            );
        }
    }

    /// `envoy_dynamic_module_callback_http_add_header`.
    fn add_header(&mut self, map: HeaderMap, name: &str, value: &[u8]) {
        // SAFETY: live stream (`enter`); both buffers are read during the call. `&mut self`
        // ends every borrow of header bytes Envoy handed out before.
        unsafe {
            envoy_dynamic_module_callback_http_add_header(
                self.ptr,
                map as u32,
                ModuleBuffer::of(name.as_bytes()),
                ModuleBuffer::of(value),
            );
        }
    }

    /// `envoy_dynamic_module_callback_http_send_response_headers` with end of stream: encoded
    /// straight back to the client (as Envoy's own CORS filter answers preflights: no
    /// local-reply machinery).
    fn answer(&mut self, status: u32, headers: &[(&str, &[u8])]) {
        // The statuses the filter answers with, without formatting them (a heap string).
        let formatted;
        let status = match status {
            200 => "200",
            204 => "204",
            403 => "403",
            other => {
                formatted = other.to_string();
                formatted.as_str()
            }
        };
        let mut raw: Vec<ModuleHttpHeader> = [(":status", status.as_bytes())]
            .iter()
            .chain(headers)
            .map(|(name, value)| module_header(name, value))
            .collect();
        // SAFETY: live stream (`enter`); Envoy copies the headers during the call.
        unsafe {
            envoy_dynamic_module_callback_http_send_response_headers(
                self.ptr,
                raw.as_mut_ptr(),
                raw.len(),
                true,
            );
        }
    }

    /// `envoy_dynamic_module_callback_http_send_response`: an empty local reply (Envoy's
    /// local-reply path: `details` is the response-code detail it logs).
    fn send_response(&mut self, status: u32, details: &str) {
        // SAFETY: live stream (`enter`); no headers (null, 0); Envoy copies the empty body and
        // the details during the call.
        unsafe {
            envoy_dynamic_module_callback_http_send_response(
                self.ptr,
                status,
                std::ptr::null_mut(),
                0,
                ModuleBuffer::of(b""),
                ModuleBuffer::of(details.as_bytes()),
            );
        }
    }

    /// `envoy_dynamic_module_callback_http_filter_get_attribute_string`.
    fn attribute(&self, attribute: Attribute) -> Option<&[u8]> {
        let mut value = EnvoyBuffer::EMPTY;
        // SAFETY: live stream (`enter`); `value` is a valid place.
        let found = unsafe {
            envoy_dynamic_module_callback_http_filter_get_attribute_string(
                self.ptr,
                attribute as u32,
                &mut value,
            )
        };
        // SAFETY: Envoy filled `value` for this hook; the slice borrows `self`.
        found.then(|| unsafe { value.as_slice() })
    }

    /// `envoy_dynamic_module_callback_http_get_metadata_keys_count` on the route's metadata.
    /// The values themselves are out of reach: the ABI reads them as scalars and lists of
    /// scalars by key, not as the Struct a policy is.
    fn route_metadata_keys(&self, namespace: &str) -> usize {
        // SAFETY: live stream (`enter`); the namespace is read during the call.
        unsafe {
            envoy_dynamic_module_callback_http_get_metadata_keys_count(
                self.ptr,
                METADATA_SOURCE_ROUTE,
                ModuleBuffer::of(namespace.as_bytes()),
            )
        }
    }

    /// `envoy_dynamic_module_callback_http_filter_increment_counter`, by one, without labels.
    fn increment_counter(&self, id: usize) {
        // SAFETY: live stream (`enter`); `id` came from `define_counter` on the config that
        // created this stream's filter; no labels (null, 0).
        unsafe {
            envoy_dynamic_module_callback_http_filter_increment_counter(
                self.ptr,
                id,
                std::ptr::null_mut(),
                0,
                1,
            );
        }
    }

    /// `envoy_dynamic_module_callback_get_most_specific_route_config`.
    fn route_config(&self) -> Option<&'h RouteConfig> {
        // SAFETY: live stream (`enter`), no other pointers.
        let ptr = unsafe { envoy_dynamic_module_callback_get_most_specific_route_config(self.ptr) };
        // SAFETY: a non-null result is a `PerRoute` that `per_route_config_new` made (this
        // module's only per-route object); Envoy keeps it while the route table the stream
        // holds lives, which outlasts the hook.
        unsafe { ptr.cast::<PerRoute>().as_ref() }.map(PerRoute::config)
    }

    /// `envoy_dynamic_module_callback_http_clear_route_cache`.
    fn clear_route_cache(&mut self) {
        // SAFETY: live stream (`enter`), no other pointers.
        unsafe { envoy_dynamic_module_callback_http_clear_route_cache(self.ptr) }
    }

    fn log(&self, level: LogLevel, message: &str) {
        log(level, message);
    }

    fn log_enabled(&self, level: LogLevel) -> bool {
        log_enabled(level)
    }
}
