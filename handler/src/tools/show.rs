//! `list` and `info`: the crashes, one line each or laid out in full, or
//! as JSON (one object a line, one line a crash).

use super::human::{self, escape};
use super::select::{local_time, Filter};
use super::store::{Crash, Store};
use super::{ListArgs, Selection};
use anyhow::{bail, Result};
use serde_json::Value;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

/// The crashes the selection picks, oldest first; an error (one line, exit
/// status 1, as coredumpctl) when there is none.
pub fn chosen(selection: &Selection) -> Result<(Store, Vec<Crash>)> {
    let filter = Filter::new(selection)?;
    let store = Store::open(&selection.source);
    // The configuration only says where the crashes are: with --dir, its
    // problems are not this command's.
    if let (Some(error), None) = (&store.config_error, &selection.source.dir) {
        eprintln!("lttng-coredump: warning: {error}");
    }
    let crashes = filter.apply(store.crashes()?);
    if crashes.is_empty() {
        bail!(
            "no crash {}in {}{}",
            if filter.is_empty() { "" } else { "matches " },
            store.dir.display(),
            if rustix::process::geteuid().is_root() {
                ""
            } else {
                " (among those this user may read)"
            }
        );
    }
    Ok((store, crashes))
}

/// The newest crash the selection picks.
pub fn latest(selection: &Selection) -> Result<Crash> {
    let (_, mut crashes) = chosen(selection)?;
    Ok(crashes.pop().expect("chosen returns at least one"))
}

fn ordered(args: &ListArgs) -> Result<Vec<Crash>> {
    let (_, mut crashes) = chosen(&args.selection)?;
    if args.latest {
        crashes = crashes.split_off(crashes.len() - 1);
    }
    if args.reverse {
        crashes.reverse();
    }
    Ok(crashes)
}

fn print_json(crashes: &[Crash]) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for crash in crashes {
        writeln!(out, "{}", serde_json::to_string(&crash.to_json())?)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list(args: &ListArgs) -> Result<ExitCode> {
    let crashes = ordered(args)?;
    if args.json {
        return print_json(&crashes);
    }
    let mut out = String::new();
    if !args.no_legend {
        writeln!(
            out,
            "{:<23} {:>7} {:>6} {:<5} {:<9} {:>7} {:<5} PROGRAM",
            "TIME", "PID", "UID", "SIG", "CORE", "SIZE", "TRACE"
        )?;
    }
    for crash in &crashes {
        let state = crash.core_state();
        let program = crash.exe_path().or(crash.process_name()).unwrap_or("?");
        writeln!(
            out,
            "{:<23} {:>7} {:>6} {:<5} {:<9} {:>7} {:<5} {}",
            crash.time().map(local_time).unwrap_or_else(|| "-".into()),
            crash.pid().map(|p| p.to_string()).unwrap_or("-".into()),
            crash.uid().map(|u| u.to_string()).unwrap_or("-".into()),
            crash.signal_name(),
            state.word(),
            if state.on_disk() {
                crash.core_size().map(human::size).unwrap_or("-".into())
            } else {
                "-".into()
            },
            if crash.trace_present() { "yes" } else { "no" },
            escape(program)
        )?;
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

pub fn info(args: &ListArgs) -> Result<ExitCode> {
    let crashes = ordered(args)?;
    if args.json {
        return print_json(&crashes);
    }
    let now = jiff::Timestamp::now().as_second();
    let mut out = String::new();
    for (index, crash) in crashes.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        describe(crash, now, &mut out);
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// What the handler found of the trace in the core (`core_trace`), and,
/// when that trace is only there, the commands that read it.
fn describe_core_trace(crash: &Crash, line: &mut impl FnMut(&str, String)) {
    let section = &crash.record["core_trace"];
    if !section.is_object() {
        return; // a record from before the check
    }
    let text = |value: &Value| value.as_str().map(escape);
    if section["checked"] != true {
        line(
            "Core Trace",
            format!(
                "not checked: {}",
                text(&section["not_checked_reason"]).unwrap_or("no reason recorded".into())
            ),
        );
        return;
    }
    line("Core Trace", text(&section["summary"]).unwrap_or_default());
    let failed = section["failed_snapshots"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for entry in &failed {
        let what = match text(&entry["session"]) {
            Some(session) => format!(
                "session {session:?} in the {} session daemon",
                text(&entry["daemon"]).unwrap_or_default()
            ),
            None => format!(
                "the {} session daemon",
                text(&entry["daemon"]).unwrap_or_default()
            ),
        };
        line(
            "",
            format!(
                "snapshot of {what} failed: {}",
                text(&entry["explanation"]).unwrap_or_default()
            ),
        );
    }
    let holds = super::trace_core::core_holds_trace(crash);
    let only_in_core = section["only_in_core"] == true;
    if holds && (only_in_core || !failed.is_empty()) && crash.core_state().on_disk() {
        let pid = crash.pid().map(|p| p.to_string()).unwrap_or("MATCH".into());
        line(
            "Recover",
            format!("lttng-coredump trace {pid} --from-core   (its events, from the core)"),
        );
        if let Some(path) = crash.core_path() {
            line(
                "",
                format!(
                    "lttng-coredump recover {} -o DIR   (the trace, as a CTF directory)",
                    escape(&path.to_string_lossy())
                ),
            );
        }
    }
}

/// One crash, laid out for people.
fn describe(crash: &Crash, now: i64, out: &mut String) {
    let record = &crash.record;
    let text = |value: &Value| value.as_str().map(escape);
    let mut line = |label: &str, value: String| {
        if label.is_empty() {
            writeln!(out, "{:>16}  {value}", "").expect("String");
        } else {
            writeln!(out, "{label:>16}: {value}").expect("String");
        }
    };
    line(
        "PID",
        match (crash.pid(), crash.process_name()) {
            (Some(pid), Some(name)) => format!("{pid} ({})", escape(name)),
            (Some(pid), None) => pid.to_string(),
            (None, _) => "-".into(),
        },
    );
    if let Some(uid) = crash.uid() {
        line(
            "UID",
            match human::user_name(uid) {
                Some(name) => format!("{uid} ({name})"),
                None => uid.to_string(),
            },
        );
    }
    if let Some(gid) = record["gid"].as_u64() {
        line("GID", gid.to_string());
    }
    if let Some(number) = record["signal"]["number"].as_i64() {
        line(
            "Signal",
            match record["signal"]["name"].as_str() {
                Some(name) => format!("{number} ({name})"),
                None => number.to_string(),
            },
        );
    }
    if let Some(time) = crash.time() {
        line(
            "Timestamp",
            format!("{} ({})", local_time(time), human::ago(time, now)),
        );
    }
    if let Some(args) = record["cmdline"].as_array() {
        let words: Vec<String> = args.iter().filter_map(|a| a.as_str()).map(escape).collect();
        line(
            "Command Line",
            format!(
                "{}{}",
                words.join(" "),
                if record["cmdline_truncated"] == true {
                    " (truncated)"
                } else {
                    ""
                }
            ),
        );
    }
    if let Some(exe) = text(&record["exe_path"]) {
        line("Executable", exe);
    }
    if let Some(cgroup) = record["cgroup"].as_str() {
        // The unified hierarchy's line (`0::/...`) says where the process
        // was; the v1 controllers' lines, when there are, add little.
        let unified = cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap_or(cgroup);
        line("Control Group", escape(unified));
    }
    if let Some(hostname) = text(&record["hostname"]) {
        line("Hostname", hostname);
    }
    let identity = &record["process_identity"];
    if let Some(state) = identity["state"].as_str() {
        line(
            "Process Details",
            match state {
                "verified_by_pidfd" => "read from /proc, checked with the kernel's pidfd".into(),
                "unverified" => "read from /proc (no pidfd to check them)".into(),
                other => format!(
                    "{} {}",
                    other.replace('_', " "),
                    text(&identity["reason"]).unwrap_or_default()
                ),
            },
        );
    }
    let core = &record["core"];
    let state = crash.core_state();
    line(
        "Core",
        match crash.core_path() {
            Some(path) => format!(
                "{} ({}{}, {} on disk, {})",
                escape(&path.to_string_lossy()),
                state.word(),
                core["size"]
                    .as_u64()
                    .map(|s| format!(", {}", human::size(s)))
                    .unwrap_or_default(),
                core["stored_bytes"]
                    .as_u64()
                    .map(human::size)
                    .unwrap_or("-".into()),
                match crash.compression() {
                    "none" => "uncompressed".to_string(),
                    other => format!("{other}-compressed"),
                }
            ),
            None => format!(
                "none ({})",
                text(&core["not_saved_reason"]).unwrap_or("no reason recorded".into())
            ),
        },
    );
    if let Some(reason) = text(&core["truncated_reason"]) {
        line("Truncated", reason);
    }
    if let Some(uid) = core["readable_by_uid"].as_u64() {
        line("Readable By", format!("root and uid {uid}"));
    }
    let snapshots = record["snapshots"].as_array().cloned().unwrap_or_default();
    if snapshots.is_empty() {
        line("Trace", "no snapshot was taken".into());
    }
    for (index, entry) in snapshots.iter().enumerate() {
        let what = format!(
            "{} of session {:?} in the {} session daemon{}",
            text(&entry["action"]).unwrap_or("snapshot".into()),
            text(&entry["session"]).unwrap_or_default(),
            text(&entry["daemon"]).unwrap_or_default(),
            text(&entry["trigger"])
                .map(|t| format!(" (trigger {t})"))
                .unwrap_or_default()
        );
        let whereabouts = match (text(&entry["path"]), text(&entry["error"])) {
            (_, Some(error)) => format!("failed: {error}"),
            (Some(path), None) => {
                let present = std::path::Path::new(entry["path"].as_str().unwrap_or("")).is_dir();
                format!("{path}{}", if present { "" } else { " (gone)" })
            }
            (None, None) => "done".into(),
        };
        line(
            if index == 0 { "Trace" } else { "" },
            format!("{what}: {whereabouts}"),
        );
    }
    describe_core_trace(crash, &mut line);
    if let Some(chain) = record["chain"].as_object() {
        line(
            "Chained To",
            format!(
                "{} ({} bytes given{})",
                chain
                    .get("command")
                    .and_then(|c| c.as_array())
                    .and_then(|c| c.first())
                    .and_then(|c| c.as_str())
                    .map(escape)
                    .unwrap_or("?".into()),
                chain
                    .get("bytes_given")
                    .and_then(|b| b.as_u64())
                    .unwrap_or(0),
                chain
                    .get("ended")
                    .and_then(|e| e.as_str())
                    .map(|e| format!(", {}", escape(e)))
                    .unwrap_or_default()
            ),
        );
    }
    line("Record", escape(&crash.record_path.to_string_lossy()));
    let errors = record["errors"].as_array().cloned().unwrap_or_default();
    for (index, error) in errors.iter().enumerate() {
        line(
            if index == 0 { "Problems" } else { "" },
            error.as_str().map(escape).unwrap_or_default(),
        );
    }
}
