//! OnAnyCoreDump triggers from the LTTng triggers RFC: the Rust engine that
//! registers and fires them, and the C API (`lttng_trigger_set()`,
//! `lttng_trigger()`) exported over it.
//!
//! The core_pattern handler fires triggers through [`engine`] directly; C
//! programs reach the same code through the exported functions.

pub mod engine;
pub mod ffi;
