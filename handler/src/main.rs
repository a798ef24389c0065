//! `lttng-coredump`: the core_pattern handler (`handle`, run by the kernel)
//! and the subcommands a person uses to put it in place and to use what
//! crashes left. Dispatch only: the subcommands are in the library's
//! `cli` folder.

// Every system call goes through rustix or std; the unsafe code lives in the
// FFI crates (lttng-ctl-sys, lttng-ctl, engine, capi, coredump-socket), none
// here: the workspace's lints forbid it in every target of this package, and
// this says so where the code is.
#![forbid(unsafe_code)]

use clap::Parser;
use lttng_coredump_handler::cli::{self, Cli};
use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    // A child of a crash tool acting as a user (`user_child`), before
    // anything else.
    if let Some(code) = lttng_coredump_handler::base::user_child::trampoline(
        lttng_coredump_handler::tools::user_side::TASKS,
    ) {
        return code;
    }
    // The kernel's call never goes through the option parser: no argument,
    // however malformed, may stop the core from being read.
    let mut raw = std::env::args_os();
    let _program = raw.next();
    let mut rest: Vec<OsString> = raw.collect();
    if rest.first().is_some_and(|first| first == "handle") {
        rest.remove(0);
        return cli::handle::run_for_kernel(rest);
    }
    cli::run(Cli::parse())
}
