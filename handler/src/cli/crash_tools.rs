//! The crash tools' subcommands (`list`, `info`, `problems`, `debug`, `dump`, `trace`,
//! `vacuum`, `config`), flattened into the main command line, and their
//! dispatch. Their options are the tools' own types ([`crate::tools`]:
//! `ListArgs`, `DebugArgs`, ...), which derive `clap::Args` so that the
//! command line takes them as they are.

use crate::tools::{
    self, ConfigArgs, DebugArgs, DumpArgs, ListArgs, ProblemsArgs, TraceArgs, VacuumArgs,
};
use clap::Subcommand;
use std::process::ExitCode;

/// The crash tools' subcommands (flattened into the main command line).
///
/// Those that select crashes (list, info, problems, debug, dump, trace) take
/// coredumpctl's options: MATCH arguments, -1, -n N, -r, -S/-U,
/// --json=short|pretty, --no-pager, -q.
#[derive(Subcommand, Debug)]
pub enum CrashCommand {
    /// One line a crash: time, PID, uid, signal, core (present or not and
    /// its size), whether a trace snapshot was taken, program.
    List(ListArgs),
    /// Everything the crash records hold, laid out for people, with the
    /// paths, and why there is no trace when there is none; the crash
    /// report: its problem (signature), the crashing thread's backtrace
    /// (--threads: every thread's) and below it the crashing process's last
    /// events (from its snapshot, else recovered from its core).
    Info(ListArgs),
    /// The crashes grouped by their signature (one bug, one problem): one
    /// line a problem with its count, first and last seen, program, users
    /// and newest crash; with a SIGNATURE (8 or more hexadecimal digits, as
    /// it prints them), that problem's crashes.
    Problems(ProblemsArgs),
    /// Run a debugger (gdb) on the executable and the core of the latest
    /// matching crash. Without a terminal, gdb runs in batch mode and
    /// prints the backtrace (`bt`).
    #[command(visible_alias = "gdb")]
    Debug(DebugArgs),
    /// Write the core of the latest matching crash, decompressed, to a file
    /// or to standard output.
    Dump(DumpArgs),
    /// Print the events of the trace snapshots taken for the latest
    /// matching crash: those of the crashing process when the channel
    /// records its vpid (or procname) context, else every event.
    Trace(TraceArgs),
    /// Apply the retention rules now (the handler applies them on every
    /// crash): delete the oldest cores past the directory size and free
    /// space limits, and those past max_age; say what is kept and why.
    Vacuum(VacuumArgs),
    /// Print the configuration the handler uses: every key, its value, and
    /// where the value comes from (the file's line, or the default), read
    /// with the handler's own checks. Exit status: 0 when the file is used
    /// as written; 1 when the command printed a problem (a key refused, an
    /// unsafe core directory, a file the handler does not trust).
    Config(ConfigArgs),
}

/// Runs one crash tool; prints its errors.
pub fn run(command: CrashCommand) -> ExitCode {
    let result = match command {
        CrashCommand::List(args) => tools::show::list(&args),
        CrashCommand::Info(args) => tools::show::info(&args),
        CrashCommand::Problems(args) => tools::problems::run(&args),
        CrashCommand::Debug(args) => tools::debug::run(&args),
        CrashCommand::Dump(args) => tools::read_core::dump(&args),
        CrashCommand::Trace(args) => tools::trace::run(&args),
        CrashCommand::Vacuum(args) => tools::vacuum::run(&args),
        CrashCommand::Config(args) => tools::config_show::run(&args),
    };
    match result {
        Ok(code) => code,
        // A pager quit before the end, or `| head`: not an error.
        Err(err) if tools::output::is_broken_pipe(&err) => ExitCode::SUCCESS,
        // Nothing matched, and -q asked for no message.
        Err(err) if err.is::<tools::show::QuietNoMatch>() => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("lttng-coredump: {err:#}");
            ExitCode::FAILURE
        }
    }
}
