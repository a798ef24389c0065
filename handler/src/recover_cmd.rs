//! `lttng-coredump recover`: the command-line face of the
//! lttng-coredump-recover crate (the trace from a core's own ring buffers),
//! with the handler's configuration telling where its crash records are
//! (their snapshots are searched for the trace's metadata).

use lttng_coredump_handler::tools::source::Source;
use lttng_coredump_handler::tools::trace_core::recorded_snapshots;
use lttng_coredump_handler::tools::SourceArgs;
use lttng_coredump_recover::{self as recover, Options};
use std::path::PathBuf;
use std::process::ExitCode;

/// Recover the LTTng trace held in a core's own ring buffers (when no
/// snapshot could be taken) into a CTF trace directory.
///
/// Exit status: 0 recovered, with metadata; 1 the core holds no LTTng-UST
/// buffer with data (the message says which case); 2 bad usage or input
/// (not an ELF core, unreadable, output directory not empty); 3 streams
/// written but no metadata found for some trace (the message says how to
/// supply it).
#[derive(clap::Args)]
pub struct RecoverArgs {
    /// The core file, as saved (uncompressed, or zstd-compressed `.zst`).
    core: PathBuf,
    /// Where to write the trace (created; must be empty if it exists).
    /// Default: the core's file name with `.trace`, in the current directory.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// The trace's metadata: a `metadata` file, or a trace or snapshot
    /// directory to search (by UUID) for one.
    #[arg(long)]
    metadata: Option<PathBuf>,
    /// More directories to search for metadata (e.g. a session's snapshot
    /// output); may be repeated.
    #[arg(long)]
    search: Vec<PathBuf>,
    /// The handler configuration whose core directory's crash records name
    /// snapshots to search (default: the installed one). A file named here
    /// must be usable: missing, relative, untrusted or unreadable is an error.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn run(args: RecoverArgs) -> ExitCode {
    let output = args.output.unwrap_or_else(|| {
        let name = args
            .core
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".zst").to_owned())
            .unwrap_or_else(|| "core".into());
        PathBuf::from(format!("{name}.trace"))
    });
    // The records next to the core first, then the configured core directory.
    let mut record_dirs = Vec::new();
    if let Some(dir) = args.core.parent() {
        record_dirs.push(if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir.to_path_buf()
        });
    }
    let source = match Source::resolve(&SourceArgs {
        config: args.config,
        dir: None,
    }) {
        Ok(source) => source,
        Err(err) => {
            eprintln!("lttng-coredump recover: {err:#}");
            return ExitCode::from(recover::EXIT_BAD_INPUT);
        }
    };
    if !record_dirs.contains(&source.dir) {
        record_dirs.push(source.dir);
    }
    let mut snapshots = Vec::new();
    for dir in &record_dirs {
        for snapshot in recorded_snapshots(dir) {
            if !snapshots.contains(&snapshot) {
                snapshots.push(snapshot);
            }
        }
    }
    let options = Options {
        core: args.core,
        output,
        metadata: args.metadata,
        recorded_snapshots: snapshots,
        search: args.search,
    };
    match recover::recover(&options) {
        Ok(report) => {
            print!("{}", report.text);
            ExitCode::from(report.status)
        }
        Err(err) => {
            eprintln!("lttng-coredump recover: {err}");
            ExitCode::from(recover::EXIT_BAD_INPUT)
        }
    }
}
