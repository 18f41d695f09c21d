//! The CORS filter as an Envoy dynamic module (`libcors.so`, Envoy 1.40): `abi` binds Envoy's
//! dynamic-module ABI (the hooks Envoy calls, the callbacks it exports) and holds every `unsafe`
//! of the crate; `host` is the safe trait the filter sees; `filter` runs `cors_core::pipeline`
//! over it. Built with `panic = "unwind"` (`make native`, cargo profile `native`) so that each
//! hook's `catch_unwind` turns a panic into a logged 500 instead of aborting Envoy.

#![deny(unsafe_op_in_unsafe_fn)]

// Without unwinding every `catch_unwind` is a no-op and a panic would abort Envoy: refuse to
// build that way (`cargo build --release -p cors-native` takes the workspace's `panic = "abort"`
// release profile; `make native` uses the `native` profile).
#[cfg(panic = "abort")]
compile_error!(
    "cors-native must be built with panic = \"unwind\": use `make native` (cargo profile `native`)"
);

mod abi;
mod filter;
mod host;
