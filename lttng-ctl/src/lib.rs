//! Safe Rust API over liblttng-ctl.
pub use lttng_ctl_sys as sys;
