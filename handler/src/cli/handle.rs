//! `lttng-coredump handle`: what the kernel runs on a crash, from the
//! core_pattern line `install` writes. It never goes through the option
//! parser (`main` calls [`run_for_kernel`] before anything else is
//! parsed): no argument, however malformed, may stop the core from being
//! read. The clap definition is there for the help and the man page only.

use crate::base::syslog::Log;
use crate::crash::pipeline::{self, Verdict};
use std::ffi::OsString;
use std::process::ExitCode;

/// What `handle` says when it is not run by the kernel.
const HANDLE_USAGE: &str = "\
usage: lttng-coredump handle [--config PATH] P=%P u=%u g=%g s=%s t=%t c=%c d=%d F=%F h=%h e=%e E=%E

`handle` is run by the kernel on a crash, with the core on its standard input
(a pipe), from the line `lttng-coredump install` writes to
/proc/sys/kernel/core_pattern. Only that call handles a crash: its arguments
hold the field P= (the crashing PID). Run from a terminal, or without a P=
field (--help included), it does nothing and exits with status 2.
See `lttng-coredump install --help` and `lttng-coredump status`.";

// The variant's doc comment in `Command` is the subcommand's help.
#[derive(clap::Args)]
pub struct HandleArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    fields: Vec<OsString>,
}

/// Handles the crash the kernel describes in `rest` (the arguments after
/// `handle`), its core on standard input.
pub fn run_for_kernel(rest: Vec<OsString>) -> ExitCode {
    // The kernel always gives a pipe and a P= field: a terminal on
    // stdin, or arguments without P= (`--help`, a script's guess), is a
    // person trying the command, who gets its usage rather than fired
    // triggers, snapshots and a core file made of whatever stdin held.
    if std::io::IsTerminal::is_terminal(&std::io::stdin())
        || !crate::crash::context::is_kernel_form(&rest)
    {
        eprintln!("{}", HANDLE_USAGE);
        return ExitCode::from(2);
    }
    let mut log = Log::default();
    let mut stdin = std::io::stdin().lock();
    // Once the core is read, fd 0 becomes /dev/null: the kernel waits
    // for the pipe's last reader to close before it lets the crashed
    // process go, and the stop actions must run after that.
    let release = || {
        let null = std::fs::File::open("/dev/null")?;
        rustix::stdio::dup2_stdin(&null)?;
        Ok(())
    };
    match pipeline::handle_then_release(rest, &mut stdin, release, &mut log) {
        Verdict::Done => ExitCode::SUCCESS,
        Verdict::CoreLost => ExitCode::FAILURE,
    }
}
