//! The core_pattern handler of lttng-coredump: what the kernel runs on a
//! crash (snapshot the traces first, then save the core, never lose it),
//! and the subcommands that install it, report on it and demonstrate it.

// Every system call goes through rustix or std; the unsafe code lives in the
// FFI crates (lttng-ctl-sys, lttng-ctl, capi), none here.
#![forbid(unsafe_code)]

pub mod access;
pub mod base;
pub mod chain;
pub mod completion;
pub mod compress;
pub mod core_trace;
pub mod corefile;
pub mod crash_plan;
pub mod crash_share;
pub mod demo;
pub mod docs;
pub mod fair_queue;
pub mod fuse_abort;
pub mod handle;
pub mod hold;
pub mod install;
pub mod kernel;
pub mod kernel_args;
pub mod listen;
pub mod manpages;
pub mod procinfo;
pub mod pump;
pub mod ratelimit;
pub mod removal;
pub mod serve;
pub mod snapshot;
pub mod snapshot_budget;
pub mod stall;
pub mod status;
pub mod store;
pub mod tools;
