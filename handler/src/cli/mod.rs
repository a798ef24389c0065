//! The command line of `lttng-coredump`: one file a subcommand, each with
//! its options (clap) and a `run` function over the layers below (as
//! cargo's `src/bin/cargo/commands/`), and the dispatch here. `main` only
//! calls them: first the trampoline of a child acting as a user, then the
//! kernel's `handle` (never through the option parser), then [`run`].
//!
//! Each subcommand's help is the doc comment of its variant of `Command`
//! (what clap shows and the man pages say); the crash tools' subcommands
//! are flattened in from [`crash_tools`].

pub mod crash_tools;
pub mod demo;
pub mod gcore;
pub mod generate_docs;
pub mod handle;
pub mod install;
pub mod kernel_paths;
pub mod recover;
pub mod serve;
pub mod status;
pub mod submit;
pub mod uninstall;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lttng-coredump",
    version,
    about = "Keep the LTTng trace and the core of every crash"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run by the kernel on a crash (from core_pattern): snapshots the
    /// traces, then saves the core read on stdin. Takes `[--config PATH]`
    /// then the fields `P=%P u=%u g=%g s=%s t=%t c=%c d=%d F=%F h=%h e=%e E=%E`.
    /// Without a `P=` field, or from a terminal, it prints its usage and
    /// exits with status 2, doing nothing.
    Handle(handle::HandleArgs),
    /// Put the handler in /proc/sys/kernel/core_pattern (backing up what is there).
    Install(install::InstallArgs),
    /// Run the crash service on the kernel's coredump socket (core_pattern
    /// `@@SOCKET`): each crash handled like `handle` does, by a resident
    /// process. Puts the socket line in core_pattern when installed with
    /// `install --socket`, and the pipe line back when it stops (SIGTERM).
    ///
    /// The listening socket is the one systemd passes (lttng-coredump.socket,
    /// socket activation), else, with --hold, one a small holder process
    /// keeps while it restarts the service whenever it dies, else its own.
    /// A held socket keeps each crash waiting in its backlog while the
    /// service restarts; one of its own goes with the service, and until it
    /// is back the kernel drops every core.
    Serve(serve::ServeArgs),
    /// Restore the core_pattern and core_pipe_limit saved by install.
    Uninstall(uninstall::UninstallArgs),
    /// Say what is installed, whether a session daemon runs, where cores go.
    ///
    /// Exit status: 0 when installed and a crash would be handled as
    /// configured (the binary exists, the configuration is valid, the core
    /// directory is usable, the root session daemon runs); 1 when not
    /// installed; 2 when installed but something is wrong (each printed as
    /// "problem:"). Warnings do not change it.
    Status(status::StatusArgs),
    /// Send the crashes the spool holds to the [submit] destinations
    /// (systemd-journal-remote, a webhook) and exit, or keep sending with
    /// --follow. Started as root, it runs as the [submit] user
    /// (lttng-coredump), never as root. Exit status: 0 sent (or nothing to
    /// send); 2 some destination failed (its crashes stay queued); 1 error.
    Submit(submit::SubmitArgs),
    /// Show it work: trace a program built for the demo, install the handler
    /// for the duration, crash the program, and print where its core and its
    /// trace snapshot are, with its last events (needs root and babeltrace2).
    ///
    /// Starts a root session daemon if none runs (and stops it at the end).
    /// Puts core_pattern and core_pipe_limit back exactly, also on an error
    /// or Ctrl-C. Takes no lock: whoever serializes core_pattern changes may
    /// hold its own lock around the demo.
    Demo(demo::DemoArgs),
    /// Recover the LTTng trace from a core's own ring buffers (when no
    /// snapshot could be taken). Exit status: 0 recovered; 1 no LTTng
    /// buffers with data in the core; 2 bad usage or input; 3 streams
    /// written but metadata missing.
    Recover(recover::RecoverArgs),
    Gcore(gcore::GcoreArgs),
    /// Write the man pages and shell completions (for packagers).
    #[command(hide = true)]
    GenerateDocs(generate_docs::GenerateDocsArgs),
    /// The crash tools (list, info, debug, dump, trace, vacuum).
    #[command(flatten)]
    Crash(crash_tools::CrashCommand),
}

/// Runs the subcommand of a parsed command line (`handle` excepted: the
/// kernel's call is [`handle::run_for_kernel`], before any parsing).
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Handle(_) => unreachable!("handled before the command line is parsed"),
        Command::Recover(args) => return recover::run(args),
        Command::Gcore(args) => return gcore::run(args),
        Command::Crash(command) => return crash_tools::run(command),
        Command::Status(args) => return status::run(args),
        Command::Submit(args) => return submit::run(args),
        Command::GenerateDocs(args) => generate_docs::run(args),
        Command::Install(args) => install::run(args),
        Command::Serve(args) => serve::run(args).map(|()| String::new()),
        Command::Uninstall(args) => uninstall::run(args),
        Command::Demo(args) => demo::run(args).map(|()| String::new()),
    };
    report(result)
}

/// A subcommand's outcome: its report printed (status 0), or its error
/// (status 1).
pub fn report(result: anyhow::Result<String>) -> ExitCode {
    match result {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            // `:#` for the whole chain: what was attempted, then why.
            eprintln!("lttng-coredump: {err:#}");
            ExitCode::FAILURE
        }
    }
}
