//! The C library of lttng-coredump: the LTTng triggers RFC's
//! `lttng_trigger_set()` and `lttng_trigger()` (with `lttng_trigger_unset()`
//! and a fire that reports what it did), exported for C programs over the
//! Rust engine, `lttng_coredump_engine`, and `lttng_coredump_live()`, the
//! core of a running process with its snapshots, over
//! `lttng_coredump_livecore`.
//!
//! This crate is built as `liblttng-coredump.so` and `.a` (capi/Makefile);
//! Rust programs, the core_pattern handler among them, use the engine crate
//! directly and build no C library.

pub mod ffi;
