//! The core_pattern handler of lttng-coredump: what the kernel runs on a
//! crash (snapshot the traces first, then save the core, never lose it),
//! and the subcommands that install it, report on it and demonstrate it.

// Every system call goes through rustix or std; the unsafe code lives in the
// FFI crates (lttng-ctl-sys, lttng-ctl, capi), none here.
#![forbid(unsafe_code)]

pub mod base;
pub mod cli;
pub mod crash;
pub mod kernel;
pub mod service;
pub mod setup;
pub mod store;
pub mod tools;
