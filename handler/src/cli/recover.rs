//! `lttng-coredump recover`: the command-line face of the
//! lttng-coredump-recover crate (the trace from a core's own ring buffers),
//! with the handler's configuration telling where its crash records are
//! (their snapshots are searched for the trace's metadata).
//!
//! Run by root over a core of another user's (the core file is theirs, or
//! root's crash record of it says so), the metadata search of what that
//! user may have chosen (the `--shm-path` the core names, the snapshots the
//! records name) is done by a child acting as that user
//! (`user_child`), which sends back the bytes of each metadata file found;
//! root writes them. Root reads only what it was told on the command line
//! (`--metadata`, `--search`) and its own records.

use crate::base::user_child::{self, Input, UserCommand, Who};
use crate::store::record_read::StoredRecord;
use crate::tools::source::Source;
use crate::tools::trace::from_core::recorded_snapshots;
use crate::tools::user_side;
use crate::tools::SourceArgs;
use lttng_coredump_recover::{self as recover, metadata, Options};
use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Bytes the metadata search as a user may send back.
const MAX_ANSWER: u64 = 256 << 20;

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
    /// The seconds the search for metadata in a user's files (run as that
    /// user when root recovers their core) may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    timeout: u64,
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
    // The snapshots the records name (read through the record's types).
    let mut recorded = Vec::new();
    for dir in &record_dirs {
        for snapshot in recorded_snapshots(dir) {
            if !recorded.contains(&snapshot) {
                recorded.push(snapshot);
            }
        }
    }
    let options = Options {
        core: args.core,
        output,
        metadata: args.metadata,
        recorded_snapshots: recorded,
        search: args.search,
    };
    let who = owner_of_core(&options.core, &record_dirs)
        .and_then(|(uid, gid)| user_child::acting_as(Some(uid.into()), Some(gid.into())));
    let deadline = Duration::from_secs(args.timeout);
    let recovered = match &who {
        None => recover::recover(&options),
        Some(who) => recover::reader::open_core(&options.core)
            .map_err(|e| recover::Error(format!("opening {}: {e}", options.core.display())))
            .and_then(|core| {
                recover::recover_with(core, &options, &mut |roots, wanted| {
                    fetch_split(who, roots, wanted, deadline)
                })
            }),
    };
    match recovered {
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

/// Whose core `core` is: its file's owner when not root; else the crash's
/// uid in a record of root's (a root-owned regular file) in `record_dirs`
/// that names this core; else root's.
fn owner_of_core(core: &Path, record_dirs: &[PathBuf]) -> Option<(u32, u32)> {
    let meta = std::fs::metadata(core).ok()?;
    if meta.uid() != 0 {
        return Some((meta.uid(), meta.gid()));
    }
    let canonical = std::fs::canonicalize(core).ok()?;
    for dir in record_dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten().take(50_000) {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let Some(file) = metadata::open_regular(&path) else {
                continue;
            };
            if file.metadata().map(|m| m.uid()).ok() != Some(0) {
                continue;
            }
            let mut text = Vec::new();
            if file.take(4 << 20).read_to_end(&mut text).is_err() {
                continue;
            }
            let Ok(record) = StoredRecord::parse(&text) else {
                continue;
            };
            let names_it = record
                .core()
                .path
                .and_then(|p| std::fs::canonicalize(p).ok())
                .is_some_and(|p| p == canonical);
            if names_it {
                let crashed = record.crashed();
                return Some((crashed.uid?, crashed.gid.unwrap_or(65534)));
            }
        }
    }
    None
}

/// The metadata of `wanted` under `roots`: what the person named is read
/// here, the rest by a child acting as `who` (the larger file wins).
fn fetch_split(
    who: &Who,
    roots: &[metadata::Root],
    wanted: &[[u8; 16]],
    deadline: Duration,
) -> HashMap<[u8; 16], metadata::Fetched> {
    let (named, theirs): (Vec<_>, Vec<_>) = roots.iter().cloned().partition(|r| r.explicit);
    let mut found = metadata::fetch(&named, wanted);
    if theirs.is_empty() {
        return found;
    }
    match fetch_as(who, &theirs, wanted, deadline) {
        Ok(fetched) => {
            for (uuid, theirs) in fetched {
                let larger = found
                    .get(&uuid)
                    .is_none_or(|ours| ours.found.len < theirs.found.len);
                if larger {
                    found.insert(uuid, theirs);
                }
            }
        }
        Err(err) => eprintln!(
            "lttng-coredump recover: searching for metadata as {}: {err:#}",
            who.describe()
        ),
    }
    found
}

fn fetch_as(
    who: &Who,
    roots: &[metadata::Root],
    wanted: &[[u8; 16]],
    deadline: Duration,
) -> anyhow::Result<HashMap<[u8; 16], metadata::Fetched>> {
    let running = UserCommand::task(Some(who.clone()), user_side::FETCH_METADATA)
        .deadline(deadline)
        .max_output(MAX_ANSWER)
        .spawn(Input::Bytes(user_side::fetch_request(roots, wanted)))?;
    let mut reader = BufReader::new(running);
    let fetched = user_side::read_fetched(&mut reader, wanted);
    let finished = reader.into_inner().finish()?;
    if !finished.status.success() {
        anyhow::bail!(
            "{}",
            finished
                .last_error_line()
                .map(crate::base::human::escape)
                .unwrap_or_else(|| user_child::describe_status(&finished.status))
        );
    }
    fetched
}
