//! `trace --from-core`: the crash's trace read from its core itself, for
//! when no snapshot could be taken. The core is opened with the caller's
//! rights (as `dump` and `debug` do: root, or the crashing user when the
//! handler let them read it), its LTTng-UST ring buffers are recovered as
//! `lttng-coredump recover` does into a private temporary directory, with
//! the metadata found in the snapshots the crash records name or the
//! session's `--shm-path`, the events printed as `trace` prints a
//! snapshot's, and the directory removed.
//!
//! The recovered trace is made of the crashing program's memory: when root
//! reads another user's crash, babeltrace2 reads it with that user's
//! rights (the directory is handed to them for that), as `trace` does for a
//! snapshot of the user's own session daemon.

use super::core::open;
use super::debug::PrivateDir;
use super::human::escape;
use super::show;
use super::store::Crash;
use super::trace::{last_wanted, print_events, read_trace, Sink};
use super::TraceArgs;
use anyhow::{anyhow, Context, Result};
use lttng_coredump_recover::{self as recover, metadata, Options};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status: the core holds buffers, but no metadata was found for them.
pub const EXIT_NO_METADATA: u8 = 3;
/// Exit status: the core holds no LTTng-UST buffer with data.
pub const EXIT_NO_BUFFERS: u8 = 4;

/// Whether the handler found recoverable buffers in the crash's core.
pub fn core_holds_trace(crash: &Crash) -> bool {
    !crash.record.core_trace().traces.is_empty()
}

/// The snapshot directories the crash records of `dir` name, and the
/// directories holding them (a session's earlier snapshots are there too):
/// where `recover` looks for a recovered trace's metadata.
pub fn recorded_snapshots(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let Ok((crashes, _)) = super::store::Store::at(dir).crashes() else {
        return out;
    };
    for crash in crashes.iter().rev() {
        for entry in crash.record.snapshots() {
            let Some(path) = entry.path.as_deref().map(PathBuf::from) else {
                continue;
            };
            for candidate in [path.parent().map(Path::to_path_buf), Some(path)]
                .into_iter()
                .flatten()
            {
                if !out.contains(&candidate) {
                    out.push(candidate);
                }
            }
        }
    }
    out
}

/// Hands `dir` and everything in it to `uid`/`gid` (no link is followed:
/// the tree is the one just written).
fn hand_over(dir: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))
        .with_context(|| format!("cannot hand {} to uid {uid}", dir.display()))?;
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            hand_over(&entry.path(), uid, gid)?;
        } else {
            std::os::unix::fs::lchown(entry.path(), Some(uid), Some(gid))
                .with_context(|| format!("cannot hand {} to uid {uid}", entry.path().display()))?;
        }
    }
    Ok(())
}

pub fn run(args: &TraceArgs) -> Result<ExitCode> {
    let (source, mut crashes) = show::chosen(&args.selection, None)?;
    let crash = crashes.pop().expect("chosen returns at least one");
    let file = open(&crash)?;
    let core_path = crash.core_path().expect("open checked it");
    let core = recover::reader::core_of_file(file)
        .with_context(|| format!("cannot read the core {}", core_path.display()))?;
    let temporary = PrivateDir::create()?;
    let output = temporary.0.join("trace");
    let options = Options {
        core: core_path.clone(),
        output: output.clone(),
        metadata: None,
        recorded_snapshots: recorded_snapshots(&source.dir),
        search: Vec::new(),
    };
    let report = recover::recover_from(core, &options)
        .map_err(|err| anyhow!("cannot recover the trace from the core: {err}"))?;
    let pid = crash.pid().unwrap_or(0);
    if report.status == recover::EXIT_NO_BUFFERS {
        eprint!("{}", escape(&report.text));
        eprintln!("lttng-coredump: the core of PID {pid} holds no LTTng trace (see above)");
        return Ok(ExitCode::from(EXIT_NO_BUFFERS));
    }
    // Another user's program's memory is parsed with that user's rights.
    let owner = crash
        .uid()
        .filter(|&uid| uid != 0 && rustix::process::geteuid().is_root());
    if let Some(uid) = owner {
        let gid = crash.gid().unwrap_or(65534);
        hand_over(&temporary.0, uid, gid)?;
    }
    let last = last_wanted(args);
    super::output::require_program("babeltrace2")?;
    let mut sink = Sink::new(args);
    let mut out = std::io::stdout().lock();
    let mut read_any = false;
    let mut missing = Vec::new();
    for trace in &report.traces {
        let uuid = metadata::format_uuid(&trace.uuid);
        let Some(found) = &trace.metadata else {
            missing.push(uuid);
            continue;
        };
        let packets: usize = trace.files.iter().map(|(_, n, _)| n).sum();
        let heading = format!(
            "trace {uuid} recovered from the core {} ({} stream(s), {packets} packet(s); \
             metadata {}, from {})",
            escape(&core_path.to_string_lossy()),
            trace.files.len(),
            escape(&found.path.to_string_lossy()),
            escape(&found.source)
        );
        if sink.json.is_some() {
            if !args.selection.quiet {
                eprintln!("-- {heading}");
            }
        } else {
            writeln!(out, "{}", sink.output.bold(&format!("-- {heading}")))?;
        }
        let labels = [
            (
                "core",
                Value::from(core_path.to_string_lossy().into_owned()),
            ),
            ("trace_uuid", Value::from(uuid.clone())),
        ];
        read_any |= print_events(
            &mut out,
            &mut sink,
            &crash,
            read_trace(&crash, &trace.dir, owner, args, last),
            args,
            &labels,
            &format!("the trace {uuid} recovered from the core"),
        )?;
    }
    sink.finish(&mut out)?;
    drop(out);
    drop(sink);
    for uuid in &missing {
        eprintln!(
            "lttng-coredump: the core holds trace {uuid}, but no metadata with its UUID was \
             found (in the snapshots the crash records of {} name, nor in a --shm-path \
             directory): the metadata is never in the core. Recover it with: lttng-coredump \
             recover {} -o DIR --metadata PATH (PATH: the metadata file of any snapshot or \
             trace of the same session)",
            source.dir.display(),
            escape(&core_path.to_string_lossy())
        );
    }
    drop(temporary);
    Ok(if read_any {
        ExitCode::SUCCESS
    } else if !missing.is_empty() {
        ExitCode::from(EXIT_NO_METADATA)
    } else {
        ExitCode::FAILURE
    })
}
