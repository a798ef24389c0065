//! The crash tools: what a person runs after a crash to find it and use
//! what it left (`list`, `info`, `problems`, `debug`, `dump`, `trace`,
//! `vacuum`), in the
//! manner of systemd's `coredumpctl`, with the LTTng trace beside the core.
//!
//! They run with the rights of whoever calls them and never more: root sees
//! every crash, a user sees the crashes whose record the handler let them
//! read (its POSIX ACL), and the kernel, not this code, decides what may be
//! opened. Everything a record holds about the process came from the
//! crashing user and is shown escaped.
//!
//! Their options are the types below (each derives clap's `Args`), which
//! the command line's subcommands (`cli::crash_tools`) take as they are.

pub mod config_show;
pub mod debug;
pub mod fleet;
pub mod last_events;
pub mod output;
pub mod problems;
pub mod read_core;
pub mod select;
pub mod show;
pub mod source;
pub mod termination;
pub mod trace;
pub mod user_side;
pub mod vacuum;

use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// Where the crashes are.
#[derive(Args, Debug, Clone, Default)]
pub struct SourceArgs {
    /// The handler's configuration, for its core directory and limits
    /// (default: the one named in core_pattern, or
    /// /etc/lttng-coredump/config.toml). A file named here must be usable:
    /// missing, relative, untrusted or unreadable is an error.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Read the crashes in this directory instead of the configured one.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// How JSON is printed (`--json=MODE`, as coredumpctl and journalctl).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonMode {
    /// One object a line, without white space.
    Short,
    /// One JSON document, an array, indented.
    Pretty,
    /// No JSON (the default).
    Off,
}

/// Which crashes, and how the output goes.
#[derive(Args, Debug, Clone, Default)]
pub struct Selection {
    /// A PID, a program name, an executable path (with a `/`; a relative one
    /// is made absolute from the current directory), or FIELD=value (a
    /// record field, dotted for nested ones: core.compression=zstd).
    /// Matches of one kind are alternatives; of different kinds, all must hold.
    #[arg(value_name = "MATCH")]
    pub matches: Vec<String>,
    /// Only crashes at or after this time: `2026-11-26 12:00[:00]`, `12:00`
    /// (today), `today`, `yesterday`, `now`, `@EPOCH`, or a time ago such as
    /// `1h`, `-30min` (`-S -1h` as journalctl takes it), `2 days ago`.
    #[arg(short = 'S', long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Only crashes at or before this time (same forms as --since).
    #[arg(short = 'U', long, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Only the newest matching crash (as -r -n 1).
    #[arg(short = '1')]
    pub latest: bool,
    /// Newest first.
    #[arg(short = 'r', long)]
    pub reverse: bool,
    /// JSON: `short` (one object a line, the default of a bare --json) or
    /// `pretty` (one document, an array). list and info print the records
    /// (with `record_path`, `core_state`, `core_present`, `trace_present`
    /// and `no_trace_reasons` added), trace the events; debug and dump
    /// accept it and print no JSON, as coredumpctl.
    #[arg(
        long,
        value_name = "MODE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "short"
    )]
    pub json: Option<JsonMode>,
    /// Do not pipe the output into a pager ($PAGER, else less -FRSXM; only
    /// ever on a terminal).
    #[arg(long)]
    pub no_pager: bool,
    /// No informational messages (which crash is debugged, records skipped,
    /// configuration warnings, "no crash" when nothing matches: the exit
    /// status still says it).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[command(flatten)]
    pub source: SourceArgs,
}

impl Selection {
    /// The JSON mode asked for, if any (`--json=off` is none).
    pub fn json(&self) -> Option<JsonMode> {
        self.json.filter(|mode| *mode != JsonMode::Off)
    }
}

#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// At most N crashes (the newest N).
    #[arg(short = 'n', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// No column headings (list).
    #[arg(long)]
    pub no_legend: bool,
    /// Print every value FIELD takes among the matching crashes, one a line
    /// (a record field, dotted for nested ones: pid, process_name, exe_path,
    /// signal.name).
    #[arg(short = 'F', long = "field", value_name = "FIELD")]
    pub field: Option<String>,
    /// info: every thread's backtrace and the modules, not only the
    /// crashing thread's (the report; --json has all of it anyway).
    #[arg(long)]
    pub threads: bool,
    /// list, on a collector: the crashes of the whole fleet that
    /// systemd-journal-remote stored in this directory (its journal files),
    /// with their hosts, each counted once however many times it was
    /// received. MATCH is then FIELD=VALUE on the JSON (hostname=web1), a
    /// PID, a host, a program name or an executable path.
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ProblemsArgs {
    /// coredumpctl's selection, of the crashes counted (a problem is shown
    /// when one of its crashes is selected, with those only). A MATCH of 8
    /// or more hexadecimal digits is a problem's SIGNATURE (or its start,
    /// as `problems` prints it): that problem's crashes are listed instead.
    /// -1 is the problem of the newest crash (with a SIGNATURE: its newest
    /// crash); -r reverses the order.
    #[command(flatten)]
    pub selection: Selection,
    /// At most N problems (the N most frequent); with a SIGNATURE, the
    /// newest N of its crashes.
    #[arg(short = 'n', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// On a collector: the problems of the whole fleet, from the crashes
    /// systemd-journal-remote stored in this directory, with the hosts each
    /// was seen on and the count (each crash counted once).
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct DebugArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Look among the newest N crashes only (the newest is debugged).
    #[arg(short = 'n', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// The debugger to run (given the executable and the core).
    #[arg(long, value_name = "PROGRAM", default_value = "gdb")]
    pub debugger: String,
    /// Extra arguments for the debugger, split as a shell would (quotes
    /// keep words together: -A "-ex 'info registers'").
    #[arg(
        short = 'A',
        long = "debugger-arguments",
        value_name = "ARGS",
        allow_hyphen_values = true
    )]
    pub debugger_arguments: Option<String>,
    /// When root debugs another user's crash (the debugger then runs as
    /// that user, on a terminal of its own): the seconds it may run
    /// (default: 300 without a terminal, a day on one).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
}

#[derive(Args, Debug, Clone)]
pub struct DumpArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Look among the newest N crashes only (the newest is dumped).
    #[arg(short = 'n', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Where to write the core (default: standard output, never a terminal).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct TraceArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// How many of the last events to print (default: a screenful on a
    /// terminal, 20 in a pipe; a cut is said: "last N of M events").
    #[arg(short = 'n', long, value_name = "N")]
    pub last: Option<usize>,
    /// Every event (of the crashing process, or of the snapshot when it
    /// cannot tell the process's apart), not only the last ones.
    #[arg(long, conflicts_with = "last")]
    pub all: bool,
    /// Also the other processes' events.
    #[arg(long)]
    pub all_processes: bool,
    /// Read the trace from the crash's core itself (the LTTng-UST ring
    /// buffers the program had mapped, as `lttng-coredump recover` does:
    /// for when no snapshot could be taken), recovered into a private
    /// temporary directory that is removed afterwards. Its metadata is
    /// searched in the snapshots the crash records name and the session's
    /// --shm-path. Exit status: 0 events printed; 1 no such crash, no core,
    /// or it cannot be read; 3 the core holds buffers but no metadata was
    /// found for them (recover with --metadata); 4 the core holds no
    /// LTTng-UST buffer with data.
    #[arg(long)]
    pub from_core: bool,
    /// The seconds each reading of a trace may take (babeltrace2, the
    /// recovery from the core), run with the trace owner's rights; past
    /// it, it is killed and the command fails.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub timeout: u64,
}

#[derive(Args, Debug, Clone)]
pub struct VacuumArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Say what would be deleted and kept, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print only what is deleted (or would be), not what is kept.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ConfigArgs {
    /// The configuration to show (default: the one named in core_pattern,
    /// or /etc/lttng-coredump/config.toml). A file named here must exist
    /// and be trusted as the handler requires.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print only the problems (none: nothing), for scripts; the exit
    /// status is the same.
    #[arg(long)]
    pub check: bool,
}
