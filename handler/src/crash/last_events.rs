//! The crashing process's last events, for its report (`report_crash`,
//! after the analysis): read from the LTTng snapshots the handler recorded
//! for the crash, else recovered from the saved core's LTTng-UST ring
//! buffers (the recover crate, as `trace --from-core` does), else none and
//! why ([`lttng_coredump_report::EventSource`]).
//!
//! Root parses none of it. A snapshot and a core are a user's data: the
//! work is the user-side task [`TASK`] (`tools/last_events.rs`), run by
//! this binary's trampoline ([`crate::base::user_child`]) acting as
//! - for a snapshot of a user's own session daemon, that user; for a
//!   snapshot of a session of the root daemon owned by a user, that owner;
//!   for a snapshot of root's own session (root's files, in a directory
//!   root chose), root's ids, in the same confined child (as `trace` reads
//!   them);
//! - for the core, whoever analyzed it ([`crate::crash::report::analyst`]:
//!   the crashing user, or the service account for root-only cores), the
//!   core handed over as its standard input (a descriptor root opened; the
//!   child never opens it by path), recovering into a directory of its
//!   own it removes afterwards.
//!
//! Each child is killed at `report_deadline`, its output bounded
//! ([`max_answer`]); its answer is untrusted JSON, checked and cut again
//! here: at most `report_last_events` events of at most
//! [`MAX_EVENT_BYTES`] each. A hostile snapshot (huge, malformed, a FIFO,
//! a link elsewhere) costs only this section: "last events unavailable:
//! ...".

use crate::base::user_child::{self, Input, UserCommand, Who};
use crate::store::record::{CoreTraceSection, DaemonFire};
use lttng_coredump_engine::ActionKind;
use lttng_coredump_report::{Event, EventSource, LastEvents};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// The user-side task's name (see `tools::last_events`).
pub const TASK: &str = "last-events";
/// The user-side task that removes a directory of the user's
/// (`tools::user_side::REMOVE`): what a killed reader left.
pub const REMOVE_TASK: &str = "remove";
/// How long removing it may take.
const REMOVE_DEADLINE: Duration = Duration::from_secs(10);
/// Bytes of one event kept (its name and fields as babeltrace2 printed
/// them): a longer one is cut, and says so.
pub const MAX_EVENT_BYTES: usize = 1024;
/// Snapshots read for one crash.
pub const MAX_SNAPSHOTS: usize = 8;
/// Notes kept from a child.
const MAX_NOTES: usize = 8;
/// Bytes of one note kept.
const MAX_NOTE_BYTES: usize = 512;

/// What to read, as the root side asks the task (its command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The crashing process's pid (its events carry it as `vpid`).
    pub pid: i32,
    /// Its name (`procname`, 15 characters), for channels without `vpid`.
    pub procname: Option<String>,
    /// Events kept, the last ones.
    pub max_events: usize,
}

/// One event, as the task sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WireEvent {
    pub timestamp: String,
    pub unix_ns: Option<i64>,
    pub name: String,
    pub fields: String,
}

/// The task's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Answer {
    /// The last events of the process, oldest first.
    pub events: Vec<WireEvent>,
    /// Events of the process the sources held.
    pub total: u64,
    /// Events of other processes, left out.
    pub other_processes: u64,
    /// What was read: the snapshot directories, or the traces recovered.
    pub read: Vec<String>,
    /// What could not be read, and what was met.
    pub notes: Vec<String>,
}

/// The most a child may print: its events and notes, with room for JSON's
/// escaping.
pub fn max_answer(max_events: usize) -> u64 {
    ((max_events + MAX_NOTES + 16) * (MAX_EVENT_BYTES + MAX_NOTE_BYTES) * 7) as u64 + 64 * 1024
}

/// `text` cut to at most `max` bytes (at a character boundary), `…` added
/// when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A snapshot the crash recorded, and who reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedSnapshot {
    pub path: String,
    /// The uid whose files it is (`None`: root's own session's).
    pub owner: Option<u32>,
}

/// The snapshots of `fires` that were recorded into a local directory.
pub fn recorded_snapshots(fires: &[DaemonFire]) -> Vec<RecordedSnapshot> {
    let mut out: Vec<RecordedSnapshot> = Vec::new();
    for fire in fires {
        let Some(report) = &fire.report else { continue };
        let daemon_user = fire
            .daemon
            .strip_prefix("user ")
            .and_then(|uid| uid.parse::<u32>().ok());
        for outcome in &report.outcomes {
            let (ActionKind::Snapshot, None, Some(path)) =
                (outcome.action, &outcome.error, &outcome.snapshot_path)
            else {
                continue;
            };
            // A relay URL is not a directory here.
            if !path.starts_with('/') || out.iter().any(|s| s.path == *path) {
                continue;
            }
            let owner = daemon_user.or(outcome.owner_uid).filter(|&uid| uid != 0);
            out.push(RecordedSnapshot {
                path: path.clone(),
                owner,
            });
        }
    }
    out.truncate(MAX_SNAPSHOTS);
    out
}

/// Who reads the files of `owner` (`None`: root's ids).
fn who(owner: Option<u32>, crashing: Option<(u32, u32)>) -> Option<Who> {
    let uid = owner?;
    let gid = match crashing {
        Some((crash_uid, gid)) if crash_uid == uid => gid,
        _ => 65534,
    };
    Some(Who::user(uid, gid))
}

/// Runs the task as `who` with `args` (after the request's), the core on
/// its standard input when given; its answer, checked.
fn run_task(
    who: Option<Who>,
    request: &Request,
    mode_args: Vec<std::ffi::OsString>,
    core: Option<&File>,
    deadline: Duration,
) -> Result<Answer, String> {
    let input = match core {
        Some(file) => Input::File(
            file.try_clone()
                .map_err(|e| format!("cannot hand the core over: {e}"))?,
        ),
        None => Input::Null,
    };
    let describe = who
        .as_ref()
        .map_or_else(|| "root's ids".to_string(), Who::describe);
    let mut running = UserCommand::task(who, TASK)
        .arg(request.pid.to_string())
        .arg(request.procname.clone().unwrap_or_else(|| "-".into()))
        .arg(request.max_events.to_string())
        .args(mode_args)
        .deadline(deadline)
        .max_output(max_answer(request.max_events))
        .spawn(input)
        .map_err(|e| format!("cannot start the reader as {describe}: {e:#}"))?;
    let mut bytes = Vec::new();
    let read = running.read_to_end(&mut bytes);
    // Its errors name it and whom it acted as.
    let finished = running.finish().map_err(|e| format!("{e:#}"))?;
    if let Err(err) = read {
        return Err(format!("reading the reader's answer: {err}"));
    }
    if !finished.status.success() {
        return Err(format!(
            "the reader (as {describe}) failed ({}): {}",
            user_child::describe_status(&finished.status),
            cut(
                finished.last_error_line().unwrap_or("no message"),
                MAX_NOTE_BYTES
            )
        ));
    }
    serde_json::from_slice::<Answer>(&bytes)
        .map_err(|e| format!("the reader's answer is not one: {e}"))
}

/// What the handler knows of the crash to read its events.
pub struct Crash<'a> {
    pub request: Request,
    /// The crashing uid and gid.
    pub ids: Option<(u32, u32)>,
    pub fires: &'a [DaemonFire],
    pub core_trace: &'a CoreTraceSection,
    /// The saved raw core, and who may read it (the report's analyst).
    pub core: Option<(&'a File, u32)>,
    /// Where the metadata of a trace in the core is searched (snapshots
    /// recorded by earlier crashes), as paths handed to the child.
    pub search: Vec<PathBuf>,
    /// When the crash happened as the handler knows it, ns since the epoch.
    pub crash_unix_ns: Option<i64>,
    pub deadline: Duration,
}

/// The crashing process's last events: from its snapshots, else from its
/// core, else none and why.
pub fn gather(crash: &Crash<'_>) -> LastEvents {
    if crash.request.max_events == 0 {
        return LastEvents::unavailable("turned off (report_last_events = 0)");
    }
    let snapshots = recorded_snapshots(crash.fires);
    if !snapshots.is_empty() {
        return from_snapshots(crash, &snapshots);
    }
    let why_no_snapshot = "no snapshot was recorded for the crash";
    if crash.core_trace.traces.is_empty() {
        let core = if crash.core_trace.checked {
            "its core holds no LTTng-UST trace"
        } else {
            "its core was not checked for a trace"
        };
        return LastEvents::unavailable(format!("{why_no_snapshot} and {core}"));
    }
    let Some((file, as_uid)) = crash.core else {
        return LastEvents::unavailable(format!("{why_no_snapshot} and no core was saved"));
    };
    from_core(crash, file, as_uid)
}

fn from_snapshots(crash: &Crash<'_>, snapshots: &[RecordedSnapshot]) -> LastEvents {
    // One child per reader: the snapshots of each owner together.
    let mut owners: Vec<Option<u32>> = Vec::new();
    for s in snapshots {
        if !owners.contains(&s.owner) {
            owners.push(s.owner);
        }
    }
    let mut answers = Vec::new();
    let mut notes = Vec::new();
    for owner in owners {
        let paths: Vec<std::ffi::OsString> = snapshots
            .iter()
            .filter(|s| s.owner == owner)
            .map(|s| s.path.clone().into())
            .collect();
        let mut args = vec![std::ffi::OsString::from("snapshot")];
        args.extend(paths);
        match run_task(
            who(owner, crash.ids),
            &crash.request,
            args,
            None,
            crash.deadline,
        ) {
            Ok(answer) => answers.push(answer),
            Err(err) => notes.push(err),
        }
    }
    let paths: Vec<String> = snapshots.iter().map(|s| s.path.clone()).collect();
    finish(
        crash,
        answers,
        notes,
        EventSource::Snapshot {
            path: paths.join("; "),
        },
    )
}

fn from_core(crash: &Crash<'_>, file: &File, as_uid: u32) -> LastEvents {
    if as_uid == 0 {
        return LastEvents::unavailable("a core is never read as root");
    }
    let reader = who(Some(as_uid), crash.ids);
    let output = match temporary_dir() {
        Ok(output) => output,
        Err(err) => return LastEvents::unavailable(err),
    };
    let mut args = vec![
        std::ffi::OsString::from("core"),
        output.clone().into_os_string(),
    ];
    args.extend(crash.search.iter().map(|p| p.clone().into_os_string()));
    let answer = run_task(
        reader.clone(),
        &crash.request,
        args,
        Some(file),
        crash.deadline,
    );
    let (answers, mut notes) = match answer {
        Ok(answer) => (vec![answer], Vec::new()),
        Err(err) => (Vec::new(), vec![err]),
    };
    if answers.is_empty() {
        // A reader killed before it removed its directory: removed as its
        // user (root opens nothing there).
        if let Err(err) = remove_as(reader, &output) {
            notes.push(err);
        }
    }
    finish(
        crash,
        answers,
        notes,
        EventSource::RecoveredFromCore {
            path: "the saved core".into(),
        },
    )
}

/// A new name for the directory a core's reader recovers into (it creates
/// it, and fails if anything is there): under `/var/tmp` (a recovered
/// trace can be larger than a RAM-backed `/tmp`).
fn temporary_dir() -> Result<PathBuf, String> {
    let mut random = [0u8; 8];
    rustix::rand::getrandom(&mut random, rustix::rand::GetRandomFlags::empty())
        .map_err(|e| format!("getrandom: {e}"))?;
    let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Ok(PathBuf::from(format!(
        "/var/tmp/lttng-coredump-last-events-{name}"
    )))
}

/// Removes `dir` as `who`, when it is a directory of theirs.
fn remove_as(who: Option<Who>, dir: &std::path::Path) -> Result<(), String> {
    let finished = UserCommand::task(who, REMOVE_TASK)
        .arg(dir)
        .deadline(REMOVE_DEADLINE)
        .spawn(Input::Null)
        .and_then(|running| running.finish())
        .map_err(|e| format!("cannot remove {}: {e:#}", dir.display()))?;
    if finished.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cannot remove {}: {}",
            dir.display(),
            cut(
                finished.last_error_line().unwrap_or("no message"),
                MAX_NOTE_BYTES
            )
        ))
    }
}

/// The answers merged (by time, the last `max_events`), checked and cut;
/// unavailable when none could be read.
fn finish(
    crash: &Crash<'_>,
    answers: Vec<Answer>,
    mut notes: Vec<String>,
    source: EventSource,
) -> LastEvents {
    let read_any = answers.iter().any(|a| !a.read.is_empty());
    let mut events: Vec<WireEvent> = Vec::new();
    let mut total = 0u64;
    let mut other_processes = 0u64;
    for answer in answers {
        total = total.saturating_add(answer.total);
        other_processes = other_processes.saturating_add(answer.other_processes);
        notes.extend(answer.notes.into_iter().take(MAX_NOTES));
        events.extend(
            answer
                .events
                .into_iter()
                .rev()
                .take(crash.request.max_events)
                .rev(),
        );
    }
    // Stable: events of one source without a time keep their order.
    events.sort_by_key(|e| e.unix_ns.unwrap_or(i64::MIN));
    let skip = events.len().saturating_sub(crash.request.max_events);
    let events: Vec<Event> = events
        .into_iter()
        .skip(skip)
        .map(|e| Event {
            timestamp: cut(&e.timestamp, 64),
            to_crash_ns: e
                .unix_ns
                .zip(crash.crash_unix_ns)
                .map(|(at, crash)| at.saturating_sub(crash)),
            name: cut(&e.name, 256),
            fields: cut(&e.fields, MAX_EVENT_BYTES),
        })
        .collect();
    let mut notes: Vec<String> = notes
        .into_iter()
        .take(MAX_NOTES)
        .map(|n| cut(&n, MAX_NOTE_BYTES))
        .collect();
    if !read_any {
        let reason = if notes.is_empty() {
            "nothing could be read".to_string()
        } else {
            notes.remove(0)
        };
        let mut unavailable = LastEvents::unavailable(reason);
        unavailable.notes = notes;
        return unavailable;
    }
    LastEvents {
        source,
        total: Some(total),
        events,
        other_processes,
        notes,
    }
}

/// What `report_crash` knows of the crash when it adds its last events.
pub struct Inputs<'a> {
    pub config: &'a crate::base::config::Config,
    pub context: &'a crate::crash::context::CrashContext,
    /// The process's name as it set it.
    pub comm: Option<&'a [u8]>,
    pub fires: &'a [DaemonFire],
    pub core_trace: &'a CoreTraceSection,
    /// The saved raw core.
    pub core: Option<&'a File>,
    /// The core directory (its newest records name earlier snapshots).
    pub core_dir: Option<&'a std::path::Path>,
    /// When the handler began with the crash, µs since the epoch (0:
    /// unknown).
    pub began_unix_us: u64,
}

/// Adds the crashing process's last events to its report (when it has
/// one: they are read beside its stack); what to log.
pub fn add(
    section: &mut crate::store::record::ReportSection,
    inputs: &Inputs<'_>,
) -> Option<String> {
    let report = section.report.as_mut()?;
    let context = inputs.context;
    let crash = Crash {
        request: Request {
            pid: context.pid.unwrap_or(0),
            procname: inputs
                .comm
                .map(|c| String::from_utf8_lossy(c).chars().take(15).collect()),
            max_events: inputs.config.report_last_events as usize,
        },
        ids: context.uid.zip(context.gid),
        fires: inputs.fires,
        core_trace: inputs.core_trace,
        core: inputs.core.zip(section.analyzed_as_uid),
        search: crate::crash::core_trace_check::snapshot_dirs(inputs.fires, inputs.core_dir),
        crash_unix_ns: (inputs.began_unix_us > 0)
            .then(|| i64::try_from(inputs.began_unix_us).ok())
            .flatten()
            .map(|us| us.saturating_mul(1000)),
        deadline: inputs.config.report_deadline,
    };
    let events = gather(&crash);
    let said = match &events.source {
        EventSource::Unavailable { reason } => format!("last events unavailable: {reason}"),
        _ => format!(
            "last events: {} of the process's {} read",
            events.events.len(),
            events.total.unwrap_or(0)
        ),
    };
    report.last_events = Some(events);
    Some(said)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crash<'a>(fires: &'a [DaemonFire], core_trace: &'a CoreTraceSection) -> Crash<'a> {
        Crash {
            request: Request {
                pid: 42,
                procname: None,
                max_events: 2,
            },
            ids: Some((1000, 1000)),
            fires,
            core_trace,
            core: None,
            search: Vec::new(),
            crash_unix_ns: Some(10_000),
            deadline: Duration::from_secs(1),
        }
    }

    #[test]
    fn answers_are_merged_by_time_cut_to_the_last_ones_and_bounded() {
        let section = CoreTraceSection::default();
        let crash = crash(&[], &section);
        let event = |ns: i64, fields: &str| WireEvent {
            timestamp: format!("0.{ns:09}"),
            unix_ns: Some(ns),
            name: "app:step".into(),
            fields: fields.into(),
        };
        let answers = vec![
            Answer {
                events: vec![event(1, "a"), event(9_000, "c")],
                total: 5,
                other_processes: 2,
                read: vec!["/t/1".into()],
                notes: vec![],
            },
            Answer {
                events: vec![event(5_000, &"x".repeat(5000))],
                total: 1,
                other_processes: 0,
                read: vec!["/t/2".into()],
                notes: vec!["n".repeat(4000)],
            },
        ];
        let source = EventSource::Snapshot { path: "/t".into() };
        let events = finish(&crash, answers, vec![], source);
        assert_eq!(events.total, Some(6));
        assert_eq!(events.other_processes, 2);
        assert_eq!(events.events.len(), 2);
        assert_eq!(events.events[1].fields, "c");
        assert_eq!(events.events[1].to_crash_ns, Some(-1_000));
        assert!(events.events[0].fields.len() <= MAX_EVENT_BYTES);
        assert!(events.events[0].fields.ends_with('…'));
        assert!(events.notes[0].len() <= MAX_NOTE_BYTES);
    }

    #[test]
    fn nothing_read_is_unavailable_with_the_first_reason() {
        let section = CoreTraceSection::default();
        let crash = crash(&[], &section);
        let events = finish(
            &crash,
            vec![Answer {
                notes: vec!["/t is a FIFO, not a directory".into()],
                ..Answer::default()
            }],
            vec![],
            EventSource::Snapshot { path: "/t".into() },
        );
        assert_eq!(
            events.source,
            EventSource::Unavailable {
                reason: "/t is a FIFO, not a directory".into()
            }
        );
        // No snapshot, no trace in the core: none, and why.
        let events = gather(&crash);
        assert!(
            matches!(&events.source, EventSource::Unavailable { reason } if reason.contains("no snapshot was recorded")),
            "{events:?}"
        );
    }

    #[test]
    fn cut_keeps_characters_whole() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("ééé", 5), "é…");
        assert!(cut(&"é".repeat(100), 10).len() <= 10);
    }
}
