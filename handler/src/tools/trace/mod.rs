//! `trace`: the trace snapshots taken for a crash, read back with the
//! babeltrace2 command-line tool. The CLI rather than the Python bindings:
//! it is in the `babeltrace2` package every LTTng installation has (the
//! bindings are a separate package, python3-bt2, rarely installed), it
//! streams any trace size in constant memory, and it can be run with the
//! crashing user's rights (a snapshot taken in a user's own session daemon
//! is that user's data, never parsed as root). babeltrace2 runs through
//! [`crate::base::user_child`]: in a session of its own with no terminal of the
//! caller's, within `--timeout` (a FIFO in a trace directory costs that,
//! not a hang), its output read through a pipe.
//!
//! The crashing process's events are picked by the `vpid` context of the
//! channel (or `procname` when only that is recorded); events of a channel
//! with neither are all shown, with a note saying why. When only the last
//! events are shown, a note says so ("last N of M events"); on a terminal
//! the output is in colour (no pager: it shows a screenful by default).
//!
//! `trace --from-core` reads the trace from the crash's core instead
//! ([`from_core`]); babeltrace2's text is read back by [`babeltrace_text`].

pub mod babeltrace_text;
pub mod from_core;

use super::output::{require_program, write_json, Output};
use super::select::local_time;
use super::show;
use super::{JsonMode, TraceArgs};
use crate::base::human::{escape, escape_controls};
use crate::base::user_child::{Input, UserCommand, Who};
use crate::store::crashes::{Crash, Snapshot};
use anyhow::{bail, Context, Result};
use babeltrace_text::Event;
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

/// Events shown when the terminal's height is unknown.
const DEFAULT_LAST: usize = 20;
/// Longest line of babeltrace2's read as one.
const MAX_LINE: u64 = 16 << 20;

/// How the crashing process's events are told apart.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counts {
    by_vpid: u64,
    by_procname: u64,
    /// Events with neither context: shown whatever process they are from.
    unattributed: u64,
    other_processes: u64,
    /// Events kept before the cut to the last ones.
    selected: u64,
}

/// Where the events go: text, or JSON a line, or JSON gathered into one
/// array printed at the end (`--json=pretty`).
pub(super) struct Sink {
    pub json: Option<JsonMode>,
    pub gathered: Vec<Value>,
    pub output: Output,
}

impl Sink {
    pub(super) fn new(args: &TraceArgs) -> Sink {
        let json = args.selection.json();
        Sink {
            json,
            gathered: Vec::new(),
            output: if json.is_some() {
                Output::plain()
            } else {
                Output::without_pager()
            },
        }
    }

    /// Prints what `--json=pretty` gathered.
    pub(super) fn finish(&mut self, out: &mut impl Write) -> Result<()> {
        if self.json == Some(JsonMode::Pretty) {
            write_json(out, JsonMode::Pretty, &self.gathered)?;
        }
        out.flush()?;
        Ok(())
    }
}

pub fn run(args: &TraceArgs) -> Result<ExitCode> {
    if args.from_core {
        return from_core::run(args);
    }
    let crash = show::latest(&args.selection, None)?;
    let last = last_wanted(args);
    let snapshots = crash.snapshots();
    if snapshots.is_empty() {
        let reasons = crash.record.trace_absence();
        bail!(
            "no trace snapshot was taken for the crash of PID {}{}{}",
            crash.pid().unwrap_or(0),
            if reasons.is_empty() {
                String::new()
            } else {
                format!(": {}", crate::base::human::text(&reasons.join("; ")))
            },
            if from_core::core_holds_trace(&crash) {
                format!(
                    "; its core holds the trace: lttng-coredump trace {} --from-core",
                    crash.pid().unwrap_or(0)
                )
            } else {
                String::new()
            }
        );
    }
    require_program("babeltrace2")?;
    let mut sink = Sink::new(args);
    let mut out = std::io::stdout().lock();
    let mut read_any = false;
    let several = snapshots.len() > 1;
    for snapshot in &snapshots {
        let heading = format!(
            "snapshot of session {:?} in the {} session daemon: {}",
            escape(&snapshot.session),
            escape(&snapshot.daemon),
            escape(&snapshot.path.to_string_lossy())
        );
        if sink.json.is_none() {
            writeln!(out, "{}", sink.output.bold(&format!("-- {heading}")))?;
        } else if several && !args.selection.quiet {
            eprintln!("-- {heading}");
        }
        let labels = [
            (
                "snapshot",
                Value::from(snapshot.path.to_string_lossy().into_owned()),
            ),
            ("session", Value::from(snapshot.session.clone())),
            ("daemon", Value::from(snapshot.daemon.clone())),
        ];
        read_any |= print_events(
            &mut out,
            &mut sink,
            &crash,
            read_snapshot(&crash, snapshot, args, last),
            args,
            &labels,
            &format!("the snapshot {}", snapshot.path.display()),
        )?;
    }
    sink.finish(&mut out)?;
    drop(out);
    drop(sink);
    Ok(if read_any {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// How many of the last events to show (None: all).
pub(super) fn last_wanted(args: &TraceArgs) -> Option<usize> {
    if args.all {
        None
    } else {
        Some(args.last.unwrap_or_else(screenful))
    }
}

/// Prints what reading a trace gave (its notes, then its events, each with
/// `labels` added in JSON), or why it could not be read (`what` it is);
/// true when it was read.
#[allow(clippy::too_many_arguments)]
pub(super) fn print_events(
    out: &mut impl Write,
    sink: &mut Sink,
    crash: &Crash,
    read: Result<(Vec<Event>, Counts)>,
    args: &TraceArgs,
    labels: &[(&str, Value)],
    what: &str,
) -> Result<bool> {
    let (events, counts) = match read {
        Ok(read) => read,
        Err(err) => {
            if sink.json.is_none() {
                writeln!(out, "cannot read it: {err:#}")?;
            }
            eprintln!("lttng-coredump: cannot read {what}: {err:#}");
            return Ok(false);
        }
    };
    let mut notes = notes(crash, counts, args.all_processes);
    if (events.len() as u64) < counts.selected {
        notes.push(format!(
            "last {} of {} events (-n N for more, --all for every one)",
            events.len(),
            counts.selected
        ));
    }
    for note in notes {
        if sink.json.is_some() {
            if !args.selection.quiet {
                eprintln!("note: {note}");
            }
        } else {
            writeln!(out, "{}", sink.output.yellow(&format!("note: {note}")))?;
        }
    }
    for event in &events {
        match sink.json {
            Some(mode) => {
                let mut json = event.to_json();
                if let Some(object) = json.as_object_mut() {
                    for (key, value) in labels {
                        object.insert((*key).into(), value.clone());
                    }
                }
                if mode == JsonMode::Pretty {
                    sink.gathered.push(json);
                } else {
                    writeln!(out, "{}", serde_json::to_string(&json)?)?;
                }
            }
            None => writeln!(out, "{}", human_line(event, &sink.output))?,
        }
    }
    if events.is_empty() && sink.json.is_none() {
        writeln!(out, "(no event)")?;
    }
    Ok(true)
}

/// The terminal's height less a few lines for the headings; a fixed
/// number when the output is not a terminal.
fn screenful() -> usize {
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        if let Ok(size) = rustix::termios::tcgetwinsize(&stdout) {
            if size.ws_row > 6 {
                return usize::from(size.ws_row) - 4;
            }
        }
    }
    DEFAULT_LAST
}

/// The snapshot's events (the crashing process's, or all), the last `last`.
fn read_snapshot(
    crash: &Crash,
    snapshot: &Snapshot,
    args: &TraceArgs,
    last: Option<usize>,
) -> Result<(Vec<Event>, Counts)> {
    // A snapshot a user's own session daemon wrote is that user's to forge:
    // read as that user (when root reads it). Root's daemon's are read
    // with the caller's rights, in a child all the same (their output
    // directory may be a tracing-group member's).
    let who = snapshot
        .daemon
        .strip_prefix("user ")
        .and_then(|uid| uid.parse::<u64>().ok())
        .and_then(|uid| {
            let gid = if Some(uid) == crash.uid().map(u64::from) {
                crash.gid().map(u64::from)
            } else {
                None
            };
            crate::base::user_child::acting_as(Some(uid), gid)
        });
    read_trace(crash, &snapshot.path, who, args, last)
}

/// The events of the trace at `path` (the crashing process's, or all), the
/// last `last`, read by babeltrace2 as `who` (the caller's ids when
/// `None`), within `--timeout`.
pub(super) fn read_trace(
    crash: &Crash,
    path: &std::path::Path,
    who: Option<Who>,
    args: &TraceArgs,
    last: Option<usize>,
) -> Result<(Vec<Event>, Counts)> {
    let running = UserCommand::program(who, "babeltrace2")
        .args([
            "--names=all",
            "--clock-seconds",
            "--no-delta",
            "--color=never",
        ])
        .arg(path)
        .deadline(Duration::from_secs(args.timeout))
        .spawn(Input::Null)
        .context("cannot run babeltrace2 (it is in the babeltrace2 package: apt-get install babeltrace2)")?;
    let pid = crash.pid();
    let procname = crash
        .process_name()
        .map(|n| n.chars().take(15).collect::<String>());
    let mut counts = Counts::default();
    let mut kept: VecDeque<Event> = VecDeque::new();
    let mut reader = BufReader::new(running);
    let mut line = Vec::new();
    loop {
        line.clear();
        // One line is one event: a line longer than an event can be is
        // read in pieces (none of which parses).
        if (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let Some(event) = Event::parse(text.trim_end_matches('\n')) else {
            continue;
        };
        let of_crasher = match (event.context("vpid"), event.context("procname")) {
            (Some(vpid), _) => {
                let mine = vpid.as_i64() == pid;
                if mine {
                    counts.by_vpid += 1;
                }
                mine
            }
            (None, Some(name)) => {
                let mine = name
                    .as_str()
                    .map(|n| n.chars().take(15).collect::<String>())
                    == procname;
                if mine {
                    counts.by_procname += 1;
                }
                mine
            }
            (None, None) => {
                counts.unattributed += 1;
                true
            }
        };
        if !of_crasher {
            counts.other_processes += 1;
            if !args.all_processes {
                continue;
            }
        }
        counts.selected += 1;
        kept.push_back(event);
        if let Some(last) = last {
            while kept.len() > last {
                kept.pop_front();
            }
        }
    }
    let finished = reader.into_inner().finish()?;
    if !finished.status.success() {
        bail!(
            "babeltrace2 failed ({}): {}",
            crate::base::user_child::describe_status(&finished.status),
            escape(finished.last_error_line().unwrap_or("no message"))
        );
    }
    Ok((kept.into(), counts))
}

fn notes(crash: &Crash, counts: Counts, all_processes: bool) -> Vec<String> {
    let mut notes = Vec::new();
    if counts.unattributed > 0 {
        notes.push(format!(
            "{} events carry no vpid or procname context, so they cannot be told apart by \
             process: they are all shown (add the context to the channel: lttng add-context -u -t \
             vpid -t procname)",
            counts.unattributed
        ));
    }
    if counts.by_procname > 0 {
        notes.push(format!(
            "{} events picked by process name ({}), as their channel records no vpid",
            counts.by_procname,
            escape(crash.process_name().unwrap_or("?"))
        ));
    }
    if counts.other_processes > 0 {
        notes.push(if all_processes {
            format!(
                "{} events of other processes are shown",
                counts.other_processes
            )
        } else {
            format!(
                "{} events of other processes left out (--all-processes shows them)",
                counts.other_processes
            )
        });
    }
    notes
}

/// `[2026-11-26 12:39:44.033262782 UTC] name: { context }, { fields }`,
/// the name in bold when coloured.
fn human_line(event: &Event, output: &Output) -> String {
    let when = match event.timestamp.split_once('.') {
        Some((seconds, fraction)) => match seconds.parse::<i64>() {
            Ok(seconds) => {
                let local = local_time(seconds);
                match local
                    .split_once(' ')
                    .and_then(|(d, rest)| rest.split_once(' ').map(|(t, zone)| (d, t, zone)))
                {
                    Some((date, time, zone)) => format!("{date} {time}.{fraction} {zone}"),
                    None => local,
                }
            }
            Err(_) => event.timestamp.clone(),
        },
        None => event.timestamp.clone(),
    };
    let mut parts = Vec::new();
    for label in ["stream.event.context", "event.fields"] {
        if let Some(item) = event.item(label) {
            parts.push(item.text.clone());
        }
    }
    format!(
        "[{}] {}: {}",
        escape_controls(&when),
        output.bold(&escape_controls(&event.name)),
        escape_controls(&parts.join(", "))
    )
}
