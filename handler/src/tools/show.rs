//! `list` and `info`: the crashes, one line each or laid out in full, or
//! as JSON (`--json=short`: one object a line; `--json=pretty`: one array),
//! or the values of one field (`-F FIELD`). On a terminal, through a pager
//! and in colour.
//!
//! What the crashing process chose (its name, command line, executable,
//! cgroup, hostname, its sessions' names) is shown escaped (`human::escape`);
//! what the handler wrote (its messages, already escaped where they quote
//! such names) is shown as text, with only control characters escaped
//! (`human::text`), never escaped twice.

use super::output::Output;
use super::select::{local_time, Filter};
use super::source::Source;
use super::{JsonMode, ListArgs, Selection};
use crate::base::human::{self, escape, text};
use crate::store::crashes::{Crash, Store};
use crate::store::record::Identity;
use anyhow::Result;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

/// Nothing matched and `-q` was given: exit status 1, no message.
#[derive(Debug)]
pub struct QuietNoMatch;

impl std::fmt::Display for QuietNoMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no crash matches")
    }
}

impl std::error::Error for QuietNoMatch {}

/// The crashes the selection picks, oldest first (within the newest
/// `count` when given); an error (one line, exit status 1, as
/// coredumpctl) when there is none.
pub fn chosen(selection: &Selection, count: Option<u64>) -> Result<(Source, Vec<Crash>)> {
    let filter = Filter::new(selection)?;
    let source = Source::resolve(&selection.source)?;
    // The configuration only says where the crashes are: with --dir, its
    // problems are not this command's.
    if selection.source.dir.is_none() {
        source.warn(selection.quiet);
    }
    let (crashes, skipped) = Store::at(&source.dir).crashes()?;
    if !selection.quiet {
        for line in &skipped {
            eprintln!("lttng-coredump: {line}");
        }
    }
    let mut crashes = filter.apply(crashes);
    if crashes.is_empty() {
        if selection.quiet {
            return Err(QuietNoMatch.into());
        }
        anyhow::bail!(
            "no crash {}in {}{}",
            if filter.is_empty() { "" } else { "matches " },
            source.dir.display(),
            if rustix::process::geteuid().is_root() {
                ""
            } else {
                " (among those this user may read)"
            }
        );
    }
    let keep = if selection.latest {
        Some(1)
    } else {
        count.map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    if let Some(keep) = keep {
        let from = crashes.len().saturating_sub(keep);
        crashes.drain(..from);
    }
    Ok((source, crashes))
}

/// The newest crash the selection picks.
pub fn latest(selection: &Selection, count: Option<u64>) -> Result<Crash> {
    let (_, mut crashes) = chosen(selection, count)?;
    Ok(crashes.pop().expect("chosen returns at least one"))
}

fn ordered(args: &ListArgs) -> Result<Vec<Crash>> {
    let (_, mut crashes) = chosen(&args.selection, args.count)?;
    // Whether their traces are still there, never looked at here.
    crate::store::crashes::look_at_snapshots(&mut crashes);
    // -1 is -r -n 1, as in coredumpctl.
    if args.selection.reverse || args.selection.latest {
        crashes.reverse();
    }
    Ok(crashes)
}

fn print_json(crashes: &[Crash], mode: JsonMode) -> Result<ExitCode> {
    let items: Vec<serde_json::Value> = crashes.iter().map(Crash::to_json).collect();
    super::output::print_json(mode, &items)?;
    Ok(ExitCode::SUCCESS)
}

/// `-F FIELD`: every value the field takes, once, in the crashes' order.
fn print_field(crashes: &[Crash], field: &str) -> Result<ExitCode> {
    let mut seen = Vec::new();
    for crash in crashes {
        let json = crash.to_json();
        let shown = match super::select::field(&json, field) {
            serde_json::Value::Null => continue,
            serde_json::Value::String(text) => escape(text),
            other => other.to_string(),
        };
        if !seen.contains(&shown) {
            seen.push(shown);
        }
    }
    let mut out = std::io::stdout().lock();
    for value in &seen {
        writeln!(out, "{value}")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn list(args: &ListArgs) -> Result<ExitCode> {
    if let Some(dir) = &args.journal_dir {
        return super::fleet::list(dir, args);
    }
    let crashes = ordered(args)?;
    if let Some(field) = &args.field {
        return print_field(&crashes, field);
    }
    if let Some(mode) = args.selection.json() {
        return print_json(&crashes, mode);
    }
    let output = Output::start(args.selection.no_pager);
    let mut out = String::new();
    if !args.no_legend {
        let heading = format!(
            "{:<23} {:>7} {:>6} {:<5} {:<9} {:>7} {:<5} PROGRAM",
            "TIME", "PID", "UID", "SIG", "CORE", "SIZE", "TRACE"
        );
        writeln!(out, "{}", output.bold(&heading))?;
    }
    for crash in &crashes {
        let state = crash.core_state();
        let program = crash.exe_path().or(crash.process_name()).unwrap_or("?");
        let word = format!("{:<9}", state.word());
        // A live core has no signal: marked so, with how it was taken.
        let (signal, live) = match crash.record.live() {
            Some(live) => (
                "live".to_string(),
                format!(
                    " (live: {}, paused {})",
                    live.method,
                    human::micros(live.pause_us)
                ),
            ),
            None => (crash.signal_name(), String::new()),
        };
        writeln!(
            out,
            "{:<23} {:>7} {:>6} {:<5} {} {:>7} {:<5} {}{live}",
            crash.time().map(local_time).unwrap_or_else(|| "-".into()),
            crash.pid().map(|p| p.to_string()).unwrap_or("-".into()),
            crash.uid().map(|u| u.to_string()).unwrap_or("-".into()),
            signal,
            match state {
                crate::store::crashes::CoreState::Present => output.green(&word),
                crate::store::crashes::CoreState::Truncated => output.yellow(&word),
                _ => word,
            },
            if state.on_disk() {
                human::size(crash.core_size())
            } else {
                "-".into()
            },
            match crash.trace_present() {
                Some(true) => "yes",
                Some(false) => "no",
                None => "?",
            },
            escape(program)
        )?;
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    drop(stdout);
    drop(output);
    Ok(ExitCode::SUCCESS)
}

pub fn info(args: &ListArgs) -> Result<ExitCode> {
    if args.journal_dir.is_some() {
        anyhow::bail!(
            "info does not read a collector's journal files: list --journal-dir DIR, or \
             coredumpctl -D DIR info"
        );
    }
    let mut crashes = ordered(args)?;
    // The report is a file beside the record: read for these crashes only.
    for crash in &mut crashes {
        crash.load_report();
    }
    if let Some(field) = &args.field {
        return print_field(&crashes, field);
    }
    if let Some(mode) = args.selection.json() {
        return print_json(&crashes, mode);
    }
    let output = Output::start(args.selection.no_pager);
    let now = jiff::Timestamp::now().as_second();
    let mut out = String::new();
    for (index, crash) in crashes.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        describe(crash, now, args.threads, &output, &mut out);
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    drop(stdout);
    drop(output);
    Ok(ExitCode::SUCCESS)
}

/// Lines of `info`: `LABEL: value`, continuation lines indented.
struct Lines<'a> {
    out: &'a mut String,
    output: &'a Output,
}

/// What `info` shows of one value at most, whatever the record holds (an
/// old record's summary, a hostile process's command line): the rest is
/// in `--json`.
const MAX_VALUE: usize = 1024;
/// Lines of one of the handler's texts shown at most.
const MAX_TEXT_LINES: usize = 16;
/// Entries of one list (snapshots, failed snapshots, problems) shown at most.
const MAX_LISTED: usize = 16;

/// `value`, cut at [`MAX_VALUE`] bytes (on a character boundary) with a
/// word of what was left out.
fn bounded(value: &str, colour: bool) -> std::borrow::Cow<'_, str> {
    if value.len() <= MAX_VALUE {
        return value.into();
    }
    let mut cut = MAX_VALUE;
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}{} [{} more bytes: --json has them all]",
        &value[..cut],
        if colour { "\x1b[0m" } else { "" },
        value.len() - cut
    )
    .into()
}

impl Lines<'_> {
    fn line(&mut self, label: &str, value: impl AsRef<str>) {
        self.painted(label, value, false);
    }

    /// The line after the first [`MAX_LISTED`] entries of a list: how many
    /// more there are.
    fn more(&mut self, total: usize) {
        if total > MAX_LISTED {
            self.line(
                "",
                format!("[and {} more: --json has them all]", total - MAX_LISTED),
            );
        }
    }

    /// A line whose label is red (problems) when coloured.
    fn painted(&mut self, label: &str, value: impl AsRef<str>, red: bool) {
        let value = bounded(value.as_ref(), self.output.colour);
        if label.is_empty() {
            writeln!(self.out, "{:>16}  {value}", "").expect("String");
        } else {
            let padded = format!("{label:>16}");
            let label = if red {
                self.output.red(&padded)
            } else {
                self.output.bold(&padded)
            };
            writeln!(self.out, "{label}: {value}").expect("String");
        }
    }

    /// A value that may run over several lines (the handler's text).
    fn text(&mut self, label: &str, value: &str) {
        let lines = value.split('\n').count();
        for (index, part) in value.split('\n').take(MAX_TEXT_LINES).enumerate() {
            self.line(if index == 0 { label } else { "" }, text(part));
        }
        if lines > MAX_TEXT_LINES {
            self.line(
                "",
                format!(
                    "[and {} more lines: --json has them all]",
                    lines - MAX_TEXT_LINES
                ),
            );
        }
    }
}

/// What the handler found of the trace in the core (`core_trace`), and,
/// when that trace is only there, the commands that read it.
fn describe_core_trace(crash: &Crash, lines: &mut Lines<'_>) {
    let section = crash.record.core_trace();
    if !section.checked {
        // No reason: a record from before the check, nothing to say.
        if let Some(reason) = &section.not_checked_reason {
            lines.text("Core Trace", &format!("not checked: {reason}"));
        }
        return;
    }
    lines.text("Core Trace", &section.summary);
    for entry in section.failed_snapshots.iter().take(MAX_LISTED) {
        let what = match &entry.session {
            Some(session) => format!(
                "session {:?} in the {} session daemon",
                escape(session),
                escape(&entry.daemon)
            ),
            None => format!("the {} session daemon", escape(&entry.daemon)),
        };
        lines.text(
            "",
            &format!("snapshot of {what} failed: {}", entry.explanation),
        );
    }
    lines.more(section.failed_snapshots.len());
    let holds = super::trace::from_core::core_holds_trace(crash);
    if holds
        && (section.only_in_core || !section.failed_snapshots.is_empty())
        && crash.core_state().on_disk()
    {
        let pid = crash.pid().map(|p| p.to_string()).unwrap_or("MATCH".into());
        lines.line(
            "Recover",
            format!("lttng-coredump trace {pid} --from-core   (its events, from the core)"),
        );
        if let Some(path) = crash.core_path() {
            lines.line(
                "",
                format!(
                    "lttng-coredump recover {} -o DIR   (the trace, as a CTF directory)",
                    escape(&path.to_string_lossy())
                ),
            );
        }
    }
}

/// How a live core was taken (`gcore`): no signal, the method, the pause.
fn describe_live(live: &crate::store::record::LiveSection, lines: &mut Lines<'_>) {
    lines.line(
        "Live Core",
        format!(
            "taken from the running process (no signal), {}{}",
            escape(&live.method),
            live.fallback
                .as_deref()
                .map(|why| format!(" (not the default method: {})", text(why)))
                .unwrap_or_default()
        ),
    );
    lines.line(
        "",
        format!(
            "{} threads stopped {} (of which the snapshots {}), {} in all",
            live.threads.len(),
            human::micros(live.pause_us),
            human::micros(live.snapshot_us),
            human::micros(live.total_us)
        ),
    );
    let cost = match live.method.as_str() {
        "copy-on-write" => format!(
            "the copy cost {} of memory (pages the process wrote during the dump)",
            human::size(live.copy_private_bytes)
        ),
        "pre-copy" => {
            "the memory was copied while the process ran; the stop copied what it wrote meanwhile"
                .to_string()
        }
        _ => format!(
            "the memory was held in a buffer of {} during the stop",
            human::size(live.buffer_bytes)
        ),
    };
    lines.line(
        "",
        format!(
            "{} of memory in the core; {cost}",
            human::size(live.memory_bytes)
        ),
    );
    if let Some(note) = &live.buffer_note {
        lines.text("", note);
    }
    for region in &live.unfaithful {
        lines.text(
            "",
            &format!(
                "{:#x}-{:#x} {}: {}",
                region.start,
                region.end,
                escape(&region.path),
                region.why
            ),
        );
    }
    for warning in &live.warnings {
        lines.text("", warning);
    }
    if let Some(uid) = live.requested_by_uid {
        lines.line("Requested By", format!("uid {uid}"));
    }
    // Taken by `serve` on a notification of an LTTng trigger (`[live]`).
    if let Some(event) = &live.event {
        lines.line(
            "On Event",
            format!(
                "trigger {:?} of uid {}{}",
                escape(&event.trigger),
                event.trigger_owner_uid,
                event
                    .event_rule
                    .as_deref()
                    .map(|rule| format!(", event rule {}", escape(rule)))
                    .unwrap_or_default()
            ),
        );
        for captured in &event.captured {
            lines.text("", &format!("captured {}", text(captured)));
        }
    }
}

/// The crash's report: its problem (signature and title) and the crashing
/// thread's backtrace (every thread's with `threads`), or why there is none.
fn describe_report(crash: &Crash, threads: bool, lines: &mut Lines<'_>) {
    let section = crash.record.report();
    if let (Some(signature), Some(title)) = (&section.signature, &section.title) {
        lines.line("Problem", escape(title));
        lines.line("Signature", escape(signature));
    }
    // Why there is none: the analysis gave none, or this record's copy of
    // the report could not be written.
    let why_none = section
        .not_analyzed_reason
        .as_ref()
        .or(section.file_error.as_ref());
    match (&section.report, why_none) {
        (Some(report), _) => {
            let options = lttng_coredump_report::render::Options {
                all_threads: threads,
            };
            // The renderer escapes what the process chose.
            let shown = lttng_coredump_report::render::text(report, &options);
            for (index, part) in shown.lines().enumerate() {
                lines.line(if index == 0 { "Report" } else { "" }, text(part));
            }
        }
        (None, Some(reason)) => lines.text("Report", &format!("none: {reason}")),
        // A record from before the report: nothing to say.
        (None, None) => {}
    }
}

/// One crash, laid out for people.
fn describe(crash: &Crash, now: i64, threads: bool, output: &Output, out: &mut String) {
    let crashed = crash.record.crashed().clone();
    let mut lines = Lines { out, output };
    lines.line(
        "PID",
        match (crashed.pid, &crashed.process_name) {
            (Some(pid), Some(name)) => format!("{pid} ({})", escape(name)),
            (Some(pid), None) => pid.to_string(),
            (None, _) => "-".into(),
        },
    );
    if let Some(uid) = crashed.uid {
        lines.line(
            "UID",
            match human::user_name(u64::from(uid)) {
                Some(name) => format!("{uid} ({})", escape(&name)),
                None => uid.to_string(),
            },
        );
    }
    if let Some(gid) = crashed.gid {
        lines.line("GID", gid.to_string());
    }
    if let Some(crash_id) = &crashed.crash_id {
        lines.line("Crash ID", escape(crash_id));
    }
    if let Some(signal) = &crashed.signal {
        lines.line(
            "Signal",
            match &signal.name {
                Some(name) => format!("{} ({name})", signal.number),
                None => signal.number.to_string(),
            },
        );
    }
    if let Some(live) = crash.record.live() {
        describe_live(live, &mut lines);
    }
    if let Some(time) = crashed.time {
        lines.line(
            "Timestamp",
            format!("{} ({})", local_time(time), human::ago(time, now)),
        );
    }
    if let Some(args) = &crashed.cmdline {
        let words: Vec<String> = args.iter().map(|a| escape(a)).collect();
        lines.line(
            "Command Line",
            format!(
                "{}{}",
                words.join(" "),
                if crashed.cmdline_truncated {
                    " (truncated)"
                } else {
                    ""
                }
            ),
        );
    }
    if let Some(exe) = &crashed.exe_path {
        lines.line("Executable", escape(exe));
    }
    if let Some(cgroup) = &crashed.cgroup {
        // The unified hierarchy's line (`0::/...`) says where the process
        // was; the v1 controllers' lines, when there are, add little.
        let unified = cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap_or(cgroup);
        lines.line("Control Group", escape(unified));
    }
    if let Some(hostname) = &crashed.hostname {
        lines.line("Hostname", escape(hostname));
    }
    lines.text(
        "Process Details",
        &match &crashed.process_identity {
            Identity::VerifiedByPidfd => "read from /proc, checked with the kernel's pidfd".into(),
            Identity::Unverified(detail) => {
                format!("read from /proc (no pidfd to check them: {detail})")
            }
            Identity::CouldNotTell(detail) => format!("left out: {detail}"),
        },
    );
    let core = crash.core();
    let state = crash.core_state();
    let state_word = match state {
        crate::store::crashes::CoreState::Present => output.green(state.word()),
        crate::store::crashes::CoreState::None => state.word().to_string(),
        _ => output.yellow(state.word()),
    };
    match core.path {
        Some(path) => lines.line(
            "Core",
            format!(
                "{} ({state_word}, {}{}, {})",
                escape(path),
                human::size(core.size),
                core.stored_bytes
                    .map(|bytes| format!(", {} on disk", human::size(bytes)))
                    .unwrap_or_default(),
                match core.compression {
                    "none" => "uncompressed".to_string(),
                    other => format!("{}-compressed", escape(other)),
                }
            ),
        ),
        None => lines.text(
            "Core",
            &format!(
                "none ({})",
                core.not_saved_reason.unwrap_or("no reason recorded")
            ),
        ),
    }
    if let Some(reason) = core.truncated_reason {
        lines.text("Truncated", reason);
    }
    if let Some(uid) = core.readable_by_uid {
        lines.line("Readable By", format!("root and uid {uid}"));
    }
    let snapshots = crash.record.snapshots();
    for (index, entry) in snapshots.iter().take(MAX_LISTED).enumerate() {
        let what = format!(
            "{} of session {:?} in the {} session daemon{}",
            escape(&entry.action),
            escape(&entry.session),
            escape(&entry.daemon),
            entry
                .trigger
                .as_deref()
                .map(|t| format!(" (trigger {})", escape(t)))
                .unwrap_or_default()
        );
        let whereabouts = match (&entry.path, &entry.error) {
            (_, Some(error)) => output.yellow(&format!("failed: {}", text(error))),
            (Some(path), None) => {
                let seen = match crash.snapshot_seen(std::path::Path::new(path)) {
                    Some(true) => "",
                    Some(false) => " (gone)",
                    None => {
                        " (not known whether it is still there: the look at it did not \
                              answer)"
                    }
                };
                format!("{}{seen}", escape(path))
            }
            (None, None) => "done".into(),
        };
        lines.line(
            if index == 0 { "Trace" } else { "" },
            format!("{what}: {whereabouts}"),
        );
    }
    lines.more(snapshots.len());
    let absence = crash.record.trace_absence();
    for (index, reason) in absence.iter().take(MAX_LISTED).enumerate() {
        let label = if index == 0 && snapshots.is_empty() {
            "Trace"
        } else {
            ""
        };
        let reason = if index == 0 {
            format!("no snapshot: {reason}")
        } else {
            reason.clone()
        };
        lines.text(label, &reason);
    }
    lines.more(absence.len());
    if snapshots.is_empty() && absence.is_empty() {
        lines.line("Trace", "no snapshot was taken");
    }
    describe_core_trace(crash, &mut lines);
    describe_report(crash, threads, &mut lines);
    if let Some(chain) = crash.record.chain() {
        lines.line(
            "Chained To",
            format!(
                "{} ({} given{}{})",
                chain
                    .command
                    .first()
                    .map(|c| escape(c))
                    .unwrap_or("?".into()),
                human::size(chain.bytes_given),
                if chain.complete { ", all of it" } else { "" },
                if chain.ended.is_empty() {
                    String::new()
                } else {
                    format!(", {}", text(&chain.ended))
                }
            ),
        );
    }
    lines.line("Record", escape(&crash.record_path.to_string_lossy()));
    let errors = crash.record.errors();
    for (index, error) in errors.iter().take(MAX_LISTED).enumerate() {
        for (part_index, part) in error.split('\n').take(MAX_TEXT_LINES).enumerate() {
            let first = index == 0 && part_index == 0;
            lines.painted(if first { "Problems" } else { "" }, text(part), true);
        }
    }
    lines.more(errors.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_says_why_a_users_copy_has_no_report_when_theirs_could_not_be_written() {
        let dir = std::env::temp_dir().join(format!("handler-show-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The user's copy as `write_within` leaves it when their copy of
        // the report could not be written (`store/report_file.rs`'s test).
        let mut record = crate::store::record::tests::sample();
        record.report.analyzed = true;
        record.report.signature = Some("5f".repeat(16));
        record.report.title = Some("x: SIGSEGV in f".into());
        let mut copy = record.user_copy(1000);
        copy.report.file_error = Some(
            "the user's copy of the report could not be written: No space left on device (os \
             error 28) (root's record has the report)"
                .into(),
        );
        let path = dir.join("core.x.42.1700000000.user.json");
        std::fs::write(&path, serde_json::to_vec(&copy).unwrap()).unwrap();
        let mut crash = Crash::read(&path).unwrap().unwrap();
        crash.load_report();
        let mut out = String::new();
        describe(&crash, 1_700_000_100, false, &Output::plain(), &mut out);
        assert!(out.contains("Problem: x: SIGSEGV in f"), "{out}");
        assert!(
            out.lines().any(|l| l.trim_start()
                == "Report: none: the user's copy of the report could not be written: No \
                    space left on device (os error 28) (root's record has the report)"),
            "{out}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
