//! `lttng-coredump gcore PID [-o FILE] [--method cow|stop]`: the core of a
//! running process, with the LTTng snapshots of the same instant, without
//! stopping it for long (`crash::live`). Its options, where the core goes
//! when no file is named, the exit status of each kind of failure, and the
//! summary it prints.

use crate::base::syslog::Log;
use crate::crash::live::{self, Destination, ErrorKind, Request};
use crate::tools::source::Source;
use crate::tools::SourceArgs;
use lttng_coredump_livecore::Method;
use std::path::PathBuf;
use std::process::ExitCode;

/// How the memory is copied (`--method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// Write-tracked pre-copy: the memory is copied while the process
    /// runs, the pages it writes meanwhile tracked and copied again; a
    /// final stop of milliseconds copies the last ones (the default, where
    /// it can be used).
    #[value(alias = "pre-copy")]
    Precopy,
    /// Copy-on-write: an injected fork() during a stop of milliseconds; the
    /// copy is dumped while the process runs (the default where pre-copy
    /// cannot be used).
    #[value(alias = "copy-on-write")]
    Cow,
    /// Stop and copy: the memory is copied while every thread is stopped,
    /// into memory, then written once the process runs again.
    #[value(alias = "stop-and-copy")]
    Stop,
}

/// Take the core of a running process, with the LTTng snapshots of the same
/// instant, stopping it for milliseconds (like gdb's gcore, which stops it
/// for the whole dump).
///
/// Every thread is stopped without a signal (PTRACE_SEIZE), the trace
/// snapshots are taken (as for a crash: the root session daemon's and the
/// process owner's OnAnyCoreDump triggers, the configured sessions) during
/// a final stop that copies only the memory the process wrote since it was
/// copied while running (pre-copy; else a copy-on-write copy is made, and
/// the process goes on while the copy is written). Runs with the caller's rights: root, or the process's owner
/// where the kernel would let them trace it (not a set-uid, non-dumpable
/// or more capable process).
///
/// Where the core goes: with -o, to that file, created by the caller
/// (never replacing one). Without -o: for root, into the crash store (the
/// configured core directory) with a record marked live, so that `list`,
/// `info`, `debug`, `dump` and `trace` show it like a crash; for anyone
/// else, to ./core.PID as gdb's gcore does (./core.PID.zst when
/// compressed). The configuration's `compression` applies (--compress
/// and --no-compress override it; gdb reads uncompressed cores only:
/// `lttng-coredump dump` decompresses a stored one, `zstd -d` a file).
///
/// Exit status: 0 the core was written; 1 an internal error; 2 bad usage
/// (the file exists, the configuration named cannot be used); 3 no such
/// process (or a zombie, a kernel thread); 4 not allowed (another user's,
/// set-uid, non-dumpable, already traced, the crash store for a non-root
/// caller); 5 the process exited during the dump; 6 the core could not be
/// written; 7 the dump's deadline passed; 8 not supported (a 32-bit
/// process; --method cow where it cannot be used). Every failure is also
/// logged to syslog.
#[derive(clap::Args, Debug)]
pub struct GcoreArgs {
    /// The process (a thread's id names its process).
    pid: i32,
    /// The core file to create (refused if it exists).
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// How the memory is copied; default: pre-copy where it can be used
    /// (else copy-on-write, else stop and copy, and the summary says why).
    /// Into the crash store, pre-copy's staging file is an unnamed file in
    /// the store, within the room max_dir_size and min_free leave beside
    /// the core (reserved while the dump runs); a process whose memory does
    /// not fit is dumped by copy-on-write, and the record says so.
    #[arg(long, value_enum)]
    method: Option<MethodArg>,
    /// Compress the core with zstd (at the configuration's zstd_level).
    #[arg(long, conflicts_with = "no_compress")]
    compress: bool,
    /// Write the core uncompressed whatever the configuration says.
    #[arg(long)]
    no_compress: bool,
    /// Take no LTTng snapshot.
    #[arg(long, visible_alias = "no-snapshot")]
    no_snapshots: bool,
    /// The handler's configuration, for the snapshots, the compression and
    /// the core directory (default: the one named in core_pattern, or
    /// /etc/lttng-coredump/config.toml). A file named here must be usable:
    /// missing, relative, untrusted or unreadable is an error (2).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print the dumper's report as JSON instead of the summary.
    #[arg(long)]
    json: bool,
}

/// The exit status of each kind of failure (see the help).
pub fn exit_status(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Internal => 1,
        ErrorKind::Invalid => 2,
        ErrorKind::NoSuchProcess | ErrorKind::Zombie | ErrorKind::KernelThread => 3,
        ErrorKind::PermissionDenied => 4,
        ErrorKind::Exited => 5,
        ErrorKind::Output => 6,
        ErrorKind::Timeout => 7,
        ErrorKind::Unsupported => 8,
    }
}

/// Where the core goes without -o (see the help).
fn default_destination(pid: i32, compressed: bool) -> Destination {
    if rustix::process::geteuid().is_root() {
        Destination::Store
    } else {
        let suffix = if compressed { ".zst" } else { "" };
        Destination::File(PathBuf::from(format!("core.{pid}{suffix}")))
    }
}

pub fn run(args: GcoreArgs) -> ExitCode {
    let mut log = Log::default().with_stderr_from(crate::base::syslog::Severity::Warning);
    // The configuration the crash tools read (the file named with
    // --config, which must then be usable, else the handler's), so that
    // the live core goes where `list` looks.
    let source = match Source::resolve(&SourceArgs {
        config: args.config.clone(),
        dir: None,
    }) {
        Ok(source) => source,
        Err(error) => {
            log.error(format!("no live core of process {}: {error:#}", args.pid));
            return ExitCode::from(2);
        }
    };
    let Source {
        config,
        config_path,
        problems,
        ..
    } = source;
    log.set_socket_path(config.syslog_socket.clone());
    for problem in problems {
        log.warning(problem);
    }
    let compress = match (args.compress, args.no_compress) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let compressed =
        compress.unwrap_or(config.compression == crate::base::config::Compression::Zstd);
    let destination = match args.output {
        Some(path) => Destination::File(path),
        None => default_destination(args.pid, compressed),
    };
    let request = Request {
        pid: args.pid,
        destination,
        method: args.method.map(|m| match m {
            MethodArg::Precopy => Method::PreCopy,
            MethodArg::Cow => Method::CopyOnWrite,
            MethodArg::Stop => Method::StopAndCopy,
        }),
        compress,
        snapshots: !args.no_snapshots,
        event: None,
        // The dumper holds the process by a pidfd from its start.
        pidfd: None,
    };
    match live::take(&request, &config, &config_path, &mut log) {
        Ok(taken) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string(&taken.report).expect("a report serializes")
                );
            } else {
                print!("{}", summary(&taken));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Logged (syslog and stderr) by `take`.
            ExitCode::from(exit_status(e.kind))
        }
    }
}

/// What a person is told of a live core.
fn summary(taken: &live::Taken) -> String {
    use crate::base::human;
    let report = &taken.report;
    let mut out = format!(
        "live core of process {} ({}): {}{}\n",
        report.pid,
        human::escape(&report.exec_name),
        human::escape(&taken.core.to_string_lossy()),
        if taken.compressed {
            " (zstd-compressed)"
        } else {
            ""
        }
    );
    out.push_str(&format!(
        "  {} threads stopped {:.2} ms ({}{}), {} of memory, {} written in {:.2} s\n",
        report.threads.len(),
        report.pause_us as f64 / 1000.0,
        report.method.name(),
        report
            .fallback
            .as_ref()
            .map(|why| format!(": {why}"))
            .unwrap_or_default(),
        human::size(report.memory_bytes),
        human::size(report.bytes_written),
        report.total_us as f64 / 1e6
    ));
    for fire in &report.snapshots {
        let Some(fire_report) = &fire.report else {
            if let Some(error) = &fire.error {
                out.push_str(&format!(
                    "  no snapshot in the {} session daemon: {}\n",
                    fire.daemon,
                    human::text(error)
                ));
            }
            continue;
        };
        for outcome in &fire_report.outcomes {
            match (&outcome.snapshot_path, &outcome.error) {
                (_, Some(error)) => out.push_str(&format!(
                    "  snapshot of session {:?} ({} session daemon) failed: {}\n",
                    human::escape(&outcome.session),
                    fire.daemon,
                    human::text(&error.to_string())
                )),
                (Some(path), None) => out.push_str(&format!(
                    "  snapshot of session {:?} ({} session daemon): {}\n",
                    human::escape(&outcome.session),
                    fire.daemon,
                    human::escape(path)
                )),
                (None, None) => {}
            }
        }
    }
    if let Some(record) = &taken.record {
        out.push_str(&format!(
            "  record: {} (lttng-coredump info {})\n",
            human::escape(&record.to_string_lossy()),
            report.pid
        ));
    }
    out
}
