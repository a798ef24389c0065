//! `trace --from-core`: the crash's trace read from its core itself, for
//! when no snapshot could be taken. Its LTTng-UST ring buffers are
//! recovered as `lttng-coredump recover` does, with the metadata found in
//! the snapshots the crash records name or the session's `--shm-path`, the
//! events printed as `trace` prints a snapshot's, and the recovered trace
//! removed.
//!
//! All of it is done by children acting as the crash's user when root
//! reads another user's crash ([`crate::base::user_child`]); with the caller's
//! rights otherwise. The recovering child reads the core (the handler let
//! that user read it; a core only root may read is refused: its trace is
//! not that user's to see), creates its own temporary directory, writes
//! the streams, searches the user's trees for the metadata (the snapshot
//! directories root's records name are handed to it as paths, never
//! opened by root) and prints a report; babeltrace2 then reads the
//! directory as that user, and a last child removes it if a killed one
//! left it. Root never opens, creates or changes owner of anything there.

use super::{last_wanted, print_events, read_trace, Sink};
use crate::base::human::escape;
use crate::base::user_child::{self, Input, UserCommand, Who};
use crate::store::crashes::Crash;
use crate::tools::show;
use crate::tools::user_side::{self, read_recovered};
use crate::tools::TraceArgs;
use anyhow::{anyhow, bail, Context, Result};
use lttng_coredump_recover as recover;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Largest report the recovering child may print.
const MAX_REPORT: u64 = 16 << 20;
/// How long removing a killed child's directory may take.
const REMOVE_DEADLINE: Duration = Duration::from_secs(30);

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
    let Ok((crashes, _)) = crate::store::crashes::Store::at(dir).crashes() else {
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

/// Removes a child's temporary directory (as that child's user) when
/// dropped, in case the child was killed before it could.
struct Leftover {
    who: Option<Who>,
    dir: PathBuf,
}

impl Drop for Leftover {
    fn drop(&mut self) {
        let removed = UserCommand::task(self.who.clone(), user_side::REMOVE)
            .arg(&self.dir)
            .deadline(REMOVE_DEADLINE)
            .spawn(Input::Null)
            .and_then(|running| running.finish());
        match removed {
            Ok(finished) if finished.status.success() => {}
            Ok(finished) => eprintln!(
                "lttng-coredump: cannot remove {}: {}",
                self.dir.display(),
                escape(finished.last_error_line().unwrap_or("no message"))
            ),
            Err(err) => eprintln!(
                "lttng-coredump: cannot remove {}: {err:#}",
                self.dir.display()
            ),
        }
    }
}

pub fn run(args: &TraceArgs) -> Result<ExitCode> {
    let (source, mut crashes) = show::chosen(&args.selection, None)?;
    let crash = crashes.pop().expect("chosen returns at least one");
    let pid = crash.pid().unwrap_or(0);
    let who = user_child::acting_as(crash.uid().map(u64::from), crash.gid().map(u64::from));
    let core_path = match &who {
        // The caller's own rights: the core is opened here first, for the
        // errors `dump` and `debug` give (gone, permission denied).
        None => {
            drop(crate::tools::read_core::open(&crash)?);
            crash.core_path().expect("open checked it")
        }
        Some(who) => {
            let path = crash
                .core_path()
                .ok_or_else(|| anyhow!("the crash of PID {pid} has no core"))?;
            if crash.core().readable_by_uid != Some(who.uid) {
                bail!(
                    "the core of PID {pid} may be read by root only (the process was not {}'s \
                     own in every respect: set-uid, capabilities, or not dumpable), so the \
                     trace in it is not read as that user; recover it yourself, knowingly: \
                     lttng-coredump recover {} -o DIR",
                    escape(&who.name),
                    escape(&path.to_string_lossy())
                );
            }
            path
        }
    };
    // The snapshots root's records name: paths handed to the child, which
    // searches them with its own rights.
    let search: Vec<PathBuf> = recorded_snapshots(&source.dir);
    let temporary = Leftover {
        who: who.clone(),
        dir: user_side::temporary_name()?,
    };
    let mut running = UserCommand::task(who.clone(), user_side::RECOVER_TRACE)
        .arg(&core_path)
        .arg(&temporary.dir)
        .args(&search)
        .deadline(Duration::from_secs(args.timeout))
        .max_output(MAX_REPORT)
        .spawn(Input::Null)?;
    let mut answer = Vec::new();
    let read = running.read_to_end(&mut answer);
    let finished = running.finish();
    let finished = match (read, finished) {
        (_, Err(err)) => {
            return Err(err).context(format!(
                "cannot recover the trace from the core of PID {pid}"
            ))
        }
        (Err(err), _) => {
            return Err(err).context(format!(
                "cannot recover the trace from the core of PID {pid}"
            ))
        }
        (Ok(_), Ok(finished)) => finished,
    };
    if !finished.status.success() {
        bail!(
            "cannot recover the trace from the core {}: {}",
            escape(&core_path.to_string_lossy()),
            escape(finished.last_error_line().unwrap_or("no message"))
        );
    }
    let (status, text, traces) = read_recovered(&answer)?;
    if status == recover::EXIT_NO_BUFFERS {
        eprint!("{}", escape(&text));
        eprintln!("lttng-coredump: the core of PID {pid} holds no LTTng trace (see above)");
        return Ok(ExitCode::from(EXIT_NO_BUFFERS));
    }
    let last = last_wanted(args);
    crate::tools::output::require_program("babeltrace2")?;
    let mut sink = Sink::new(args);
    let mut out = std::io::stdout().lock();
    let mut read_any = false;
    let mut missing = Vec::new();
    for trace in &traces {
        let uuid = trace.uuid.clone();
        let Some((found_path, found_source)) = &trace.metadata else {
            missing.push(uuid);
            continue;
        };
        let heading = format!(
            "trace {} recovered from the core {} ({} stream(s), {} packet(s); \
             metadata {}, from {})",
            escape(&uuid),
            escape(&core_path.to_string_lossy()),
            trace.streams,
            trace.packets,
            escape(found_path),
            escape(found_source)
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
            read_trace(&crash, &trace.dir, who.clone(), args, last),
            args,
            &labels,
            &format!("the trace {uuid} recovered from the core"),
        )?;
    }
    sink.finish(&mut out)?;
    drop(out);
    drop(sink);
    for uuid in &missing {
        let uuid = escape(uuid);
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
