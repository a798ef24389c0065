//! `list --journal-dir DIR` and `problems --journal-dir DIR`, on the
//! collector: the crashes of the whole fleet that systemd-journal-remote
//! stored in DIR (one journal file per host), each counted once (by its
//! host and its `LTTNG_COREDUMP_CRASH_ID`: a crash sent again after a lost
//! acknowledgement is one crash, its copies said; the same ID from another
//! host is another crash), and the problems they
//! make across hosts (crashes grouped by signature, with the hosts, the
//! programs and the count). The fleet crate's reader does the reading
//! (`lttng_coredump_fleet::collector`: `journalctl -D DIR -o export`,
//! parsed by the journal crate), so `coredumpctl -D DIR` and these agree on
//! what is there.
//!
//! Whoever runs them (root, or a member of the journal files' group) reads
//! what every host chose to send: the files are read by journalctl under a
//! time bound, each field's value is bounded (longer ones are left out),
//! and so is the whole read (past it, an error, never a partial list taken
//! for the whole). Every value shown comes from a host and is escaped
//! (`human::escape`); JSON is escaped by the serializer.

use super::output::{print_json, Output};
use super::select::{local_time, parse_time};
use super::{ListArgs, ProblemsArgs, Selection};
use crate::base::human::escape;
use anyhow::{anyhow, bail, Result};
use jiff::ZonedDateTime as Zoned;
use lttng_coredump_fleet::collector::{self, CollectedCrash, ReadOptions};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// How the collector's files are read by the tools: values up to 64 KiB
/// (an entry of ours is under that, its core aside, which is never read),
/// 512 MiB of entries in all, 10 minutes.
fn read_options() -> ReadOptions {
    ReadOptions {
        journalctl: "journalctl".into(),
        timeout: Duration::from_secs(600),
        extra_fields: Vec::new(),
        max_value: 64 << 10,
        max_total: 512 << 20,
    }
}

/// The crashes of `dir`, oldest first.
fn read(dir: &Path) -> Result<Vec<CollectedCrash>> {
    collector::read_journal_dir(dir, &read_options()).map_err(|e| anyhow!("{e}"))
}

/// Seconds since the epoch of a crash's entry.
fn seconds(us: u64) -> i64 {
    i64::try_from(us / 1_000_000).unwrap_or(i64::MAX)
}

/// A value a host sent, escaped; `-` for none.
fn shown(value: &Option<String>) -> String {
    value.as_deref().map(escape).unwrap_or_else(|| "-".into())
}

/// The crashed program, escaped.
fn program(crash: &CollectedCrash) -> String {
    escape(
        crash
            .exe
            .as_deref()
            .or(crash.comm.as_deref())
            .unwrap_or("?"),
    )
}

/// Writes `out` to standard output.
fn emit(out: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn time_of(us: u64) -> String {
    if us == 0 {
        "-".into()
    } else {
        local_time(seconds(us))
    }
}

/// One MATCH against a crash of the collector: `FIELD=VALUE` on its JSON
/// (`hostname=web1`, `signal=SIGSEGV`), else a PID, a host name, a program
/// name or an executable path.
fn matches(crash: &CollectedCrash, json: &serde_json::Value, wanted: &str) -> bool {
    if let Some((field, value)) = wanted.split_once('=') {
        return match &json[field] {
            serde_json::Value::String(s) => s == value,
            serde_json::Value::Null => false,
            other => serde_json::from_str::<serde_json::Value>(value).is_ok_and(|v| &v == other),
        };
    }
    [&crash.pid, &crash.hostname, &crash.comm, &crash.exe]
        .iter()
        .any(|v| v.as_deref() == Some(wanted))
}

/// The crashes the selection picks: matches of different fields must all
/// hold, of the same field any; -S/-U on the entry's time.
fn select(crashes: Vec<CollectedCrash>, selection: &Selection) -> Result<Vec<CollectedCrash>> {
    let now = Zoned::now();
    let bound = |text: &Option<String>, what: &str| {
        text.as_deref()
            .map(|t| parse_time(t, &now).map_err(|e| anyhow!("--{what} {t:?}: {e}")))
            .transpose()
    };
    let since = bound(&selection.since, "since")?;
    let until = bound(&selection.until, "until")?;
    let kind = |m: &str| m.split_once('=').map_or("", |(f, _)| f).to_owned();
    Ok(crashes
        .into_iter()
        .filter(|crash| {
            let t = seconds(crash.realtime_us);
            if since.is_some_and(|s| t < s) || until.is_some_and(|u| t > u) {
                return false;
            }
            let json = serde_json::to_value(crash).unwrap_or_default();
            let mut kinds: Vec<String> = selection.matches.iter().map(|m| kind(m)).collect();
            kinds.sort();
            kinds.dedup();
            kinds.iter().all(|k| {
                selection
                    .matches
                    .iter()
                    .filter(|m| &kind(m) == k)
                    .any(|m| matches(crash, &json, m))
            })
        })
        .collect())
}

/// The options of the local crash store that mean nothing here.
fn refuse_local_options(selection: &Selection) -> Result<()> {
    if selection.source.dir.is_some() || selection.source.config.is_some() {
        bail!("--journal-dir reads the collector's journal files: not with --dir or --config");
    }
    Ok(())
}

/// `list --journal-dir DIR`: one line a crash (time, host, PID, signal,
/// where its core is, program, copies received).
pub fn list(dir: &Path, args: &ListArgs) -> Result<ExitCode> {
    let selection = &args.selection;
    refuse_local_options(selection)?;
    if args.field.is_some() {
        bail!("-F is not for --journal-dir: use --json and pick the field");
    }
    let mut crashes = select(read(dir)?, selection)?;
    if crashes.is_empty() {
        if selection.quiet {
            return Err(super::show::QuietNoMatch.into());
        }
        bail!(
            "no crash {}in the journal files of {}",
            if selection.matches.is_empty() && selection.since.is_none() {
                ""
            } else {
                "matches "
            },
            dir.display()
        );
    }
    let keep = if selection.latest {
        Some(1)
    } else {
        args.count.map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    if let Some(keep) = keep {
        let from = crashes.len().saturating_sub(keep);
        crashes.drain(..from);
    }
    if selection.reverse || selection.latest {
        crashes.reverse();
    }
    if let Some(mode) = selection.json() {
        let items: Vec<serde_json::Value> = crashes
            .iter()
            .map(|c| serde_json::to_value(c).unwrap_or_default())
            .collect();
        print_json(mode, &items)?;
        return Ok(ExitCode::SUCCESS);
    }
    let output = Output::start(selection.no_pager);
    let mut out = String::new();
    if !args.no_legend {
        let heading = format!(
            "{:<23} {:<20} {:>7} {:<7} {:<7} {:<16} PROGRAM",
            "TIME", "HOST", "PID", "SIG", "CORE", "SIGNATURE"
        );
        writeln!(out, "{}", output.bold(&heading))?;
    }
    for crash in &crashes {
        let signature = crash.signature.as_deref().map(escape).unwrap_or("-".into());
        writeln!(
            out,
            "{:<23} {:<20} {:>7} {:<7} {:<7} {:<16} {}{}",
            time_of(crash.realtime_us),
            shown(&crash.hostname),
            shown(&crash.pid),
            shown(&crash.signal),
            shown(&crash.core_storage),
            signature.chars().take(16).collect::<String>(),
            program(crash),
            if crash.copies > 1 {
                format!(" (received {} times, counted once)", crash.copies)
            } else {
                String::new()
            }
        )?;
    }
    emit(&out)?;
    drop(output);
    Ok(ExitCode::SUCCESS)
}

/// `problems --journal-dir DIR`: one line a problem of the fleet (count,
/// hosts, first and last seen, programs); with SIGNATURE, its crashes.
/// The selection (MATCH, -S/-U) picks the crashes counted; -1, -n, -r and
/// --json act as on the local store's `problems`.
pub fn problems(dir: &Path, args: &ProblemsArgs) -> Result<ExitCode> {
    refuse_local_options(&args.selection)?;
    let (selection, signature) = super::problems::split_signature(&args.selection)?;
    let filtered =
        !selection.matches.is_empty() || selection.since.is_some() || selection.until.is_some();
    let crashes = select(read(dir)?, &selection)?;
    if crashes.is_empty() && filtered {
        if selection.quiet {
            return Err(super::show::QuietNoMatch.into());
        }
        bail!("no crash matches in the journal files of {}", dir.display());
    }
    let mut problems = collector::problems(&crashes);
    let latest = args.selection.latest;
    let mode = selection.json();
    let output = if mode.is_some() {
        Output::plain()
    } else {
        Output::start(selection.no_pager)
    };
    let mut out = String::new();
    let joined = |set: &std::collections::BTreeSet<String>| {
        set.iter().map(|s| escape(s)).collect::<Vec<_>>().join(",")
    };
    match signature {
        None => {
            if latest {
                // The problem of the newest crash (crashes are oldest first).
                let newest = crashes.last().map(|c| {
                    collector::problems(std::slice::from_ref(c))
                        .remove(0)
                        .signature
                });
                problems.retain(|p| Some(&p.signature) == newest.as_ref());
            }
            super::problems::arrange(&mut problems, args.count, false, selection.reverse);
            if let Some(mode) = mode {
                let items = problems
                    .iter()
                    .map(serde_json::to_value)
                    .collect::<Result<Vec<_>, _>>()?;
                print_json(mode, &items)?;
                return Ok(ExitCode::SUCCESS);
            }
            let heading = format!(
                "{:<16} {:>5} {:>5} {:<23} {:<23} {:<24} PROGRAMS",
                "SIGNATURE", "COUNT", "HOSTS", "FIRST SEEN", "LAST SEEN", "HOST NAMES"
            );
            writeln!(out, "{}", output.bold(&heading))?;
            for problem in &problems {
                let signature = escape(&problem.signature);
                writeln!(
                    out,
                    "{:<16} {:>5} {:>5} {:<23} {:<23} {:<24} {}",
                    if problem.signed {
                        signature.chars().take(16).collect::<String>()
                    } else {
                        "(no report)".into()
                    },
                    problem.count,
                    problem.hosts.len(),
                    time_of(problem.first_us),
                    time_of(problem.last_us),
                    joined(&problem.hosts),
                    if problem.signed {
                        joined(&problem.programs)
                    } else {
                        signature
                    }
                )?;
            }
            let copies: usize = crashes.iter().map(|c| c.copies - 1).sum();
            if copies > 0 {
                writeln!(
                    out,
                    "{copies} entr{} received again after a lost acknowledgement, each counted \
                     once",
                    if copies == 1 { "y" } else { "ies" }
                )?;
            }
        }
        Some(wanted) => {
            let place = dir.display();
            let found = super::problems::find_signature(
                problems
                    .iter()
                    .filter(|p| p.signed)
                    .map(|p| p.signature.as_str()),
                &wanted,
                &place,
            )?;
            let problem = problems
                .iter()
                .find(|p| p.signature == found)
                .expect("found among them");
            let mut of_problem: Vec<&CollectedCrash> = crashes
                .iter()
                .filter(|c| c.signature.as_deref() == Some(problem.signature.as_str()))
                .collect();
            let count = if latest { Some(1) } else { args.count };
            super::problems::arrange(&mut of_problem, count, true, selection.reverse || latest);
            if let Some(mode) = mode {
                let mut json = serde_json::to_value(problem)?;
                json["crashes"] = serde_json::to_value(&of_problem)?;
                print_json(mode, &[json])?;
                return Ok(ExitCode::SUCCESS);
            }
            writeln!(out, "Signature: {}", escape(&problem.signature))?;
            writeln!(out, "Crashes: {}", problem.count)?;
            writeln!(out, "Hosts: {}", joined(&problem.hosts))?;
            let heading = format!(
                "{:<23} {:<20} {:>7} {:<32} PROGRAM",
                "TIME", "HOST", "PID", "CRASH ID"
            );
            writeln!(out, "{}", output.bold(&heading))?;
            for crash in of_problem {
                writeln!(
                    out,
                    "{:<23} {:<20} {:>7} {:<32} {}",
                    time_of(crash.realtime_us),
                    shown(&crash.hostname),
                    shown(&crash.pid),
                    shown(&crash.crash_id),
                    program(crash)
                )?;
            }
        }
    }
    super::problems::emit(output, &out)?;
    Ok(ExitCode::SUCCESS)
}
