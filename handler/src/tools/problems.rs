//! `problems`: the crashes grouped by their signature (the record's
//! `report.signature`, see `lttng_coredump_report::signature`), one bug one
//! line: how many crashes, first and last seen, the program, the users, the
//! newest crash; `problems SIGNATURE` lists that problem's crashes. Only
//! the crashes the caller may read count, as in `list`; those without a
//! report (turned off, no core, analysis failed) are counted apart. It
//! takes coredumpctl's selection as `list` does (MATCH, -S/-U, -1, -n, -r,
//! --json=short|pretty, --no-pager, -q), the crashes selected making the
//! problems shown.

use super::output::{print_json, Output};
use super::select::local_time;
use super::show::chosen;
use super::{ProblemsArgs, Selection};
use crate::base::human::escape;
use crate::store::crashes::Crash;
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

/// One problem: the crashes of one signature.
pub struct Problem<'a> {
    pub signature: String,
    pub title: String,
    /// Oldest first.
    pub crashes: Vec<&'a Crash>,
}

impl Problem<'_> {
    fn first(&self) -> Option<i64> {
        self.crashes.iter().filter_map(|c| c.time()).min()
    }

    fn last(&self) -> Option<i64> {
        self.crashes.iter().filter_map(|c| c.time()).max()
    }

    fn newest(&self) -> Option<&Crash> {
        self.crashes.iter().copied().max_by_key(|c| c.time())
    }

    fn programs(&self) -> Vec<String> {
        let mut programs: Vec<String> = self
            .crashes
            .iter()
            .filter_map(|c| c.exe_path().or(c.process_name()).map(str::to_owned))
            .collect();
        programs.sort();
        programs.dedup();
        programs
    }

    fn users(&self) -> Vec<u32> {
        let mut users: Vec<u32> = self.crashes.iter().filter_map(|c| c.uid()).collect();
        users.sort_unstable();
        users.dedup();
        users
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "signature": self.signature,
            "title": self.title,
            "count": self.crashes.len(),
            "first_seen": self.first(),
            "last_seen": self.last(),
            "programs": self.programs(),
            "uids": self.users(),
            "newest_record": self.newest().map(|c| c.record_path.to_string_lossy().into_owned()),
            "newest_crash_id": self.newest().and_then(|c| c.record.crashed().crash_id.clone()),
        })
    }
}

/// The crashes grouped by signature, the most frequent first (then the
/// most recent); and how many crashes have no signature.
pub fn group(crashes: &[Crash]) -> (Vec<Problem<'_>>, usize) {
    let mut by_signature: BTreeMap<String, Problem<'_>> = BTreeMap::new();
    let mut unsigned = 0;
    for crash in crashes {
        let section = crash.record.report();
        let Some(signature) = &section.signature else {
            unsigned += 1;
            continue;
        };
        by_signature
            .entry(signature.clone())
            .or_insert_with(|| Problem {
                signature: signature.clone(),
                title: section.title.clone().unwrap_or_default(),
                crashes: Vec::new(),
            })
            .crashes
            .push(crash);
    }
    let mut problems: Vec<Problem<'_>> = by_signature.into_values().collect();
    problems.sort_by(|a, b| {
        b.crashes
            .len()
            .cmp(&a.crashes.len())
            .then(b.last().cmp(&a.last()))
    });
    (problems, unsigned)
}

fn time(t: Option<i64>) -> String {
    t.map(local_time).unwrap_or_else(|| "-".into())
}

/// Whether a MATCH names a problem: 8 or more hexadecimal digits (a PID
/// has at most 7 digits: `pid_max` is at most 2^22).
fn is_signature(word: &str) -> bool {
    word.len() >= 8 && word.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The selection without its SIGNATURE (and without -1, which `problems`
/// applies to problems, not to crashes), and the signature, lower case.
pub(super) fn split_signature(selection: &Selection) -> Result<(Selection, Option<String>)> {
    let (signatures, matches): (Vec<String>, Vec<String>) = selection
        .matches
        .iter()
        .cloned()
        .partition(|word| is_signature(word));
    if signatures.len() > 1 {
        bail!("one signature at a time (given: {})", signatures.join(", "));
    }
    let crashes = Selection {
        matches,
        latest: false,
        ..selection.clone()
    };
    Ok((
        crashes,
        signatures
            .into_iter()
            .next()
            .map(|s| s.to_ascii_lowercase()),
    ))
}

/// The one signature of `signatures` that starts with `wanted`.
pub(super) fn find_signature<'a>(
    mut signatures: impl Iterator<Item = &'a str>,
    wanted: &str,
    place: &dyn std::fmt::Display,
) -> Result<&'a str> {
    let first = signatures.find(|s| s.starts_with(wanted));
    match (first, signatures.find(|s| s.starts_with(wanted))) {
        (Some(one), None) => Ok(one),
        (None, _) => bail!("no problem has the signature {wanted} in {place}"),
        (Some(_), Some(_)) => {
            bail!("{wanted} is the start of several signatures: give more digits")
        }
    }
}

/// coredumpctl's -n, -r (and -1, already applied by the caller) on items
/// in their natural order: problems most frequent first (-n keeps the
/// first N), a problem's crashes oldest first (-n keeps the newest N).
pub(super) fn arrange<T>(items: &mut Vec<T>, count: Option<u64>, keep_last: bool, reverse: bool) {
    if let Some(n) = count.map(|n| usize::try_from(n).unwrap_or(usize::MAX)) {
        if keep_last {
            let from = items.len().saturating_sub(n);
            items.drain(..from);
        } else {
            items.truncate(n);
        }
    }
    if reverse {
        items.reverse();
    }
}

/// Writes `out` through the pager (on a terminal, unless --no-pager).
pub(super) fn emit(output: Output, out: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    drop(output);
    Ok(())
}

pub fn run(args: &ProblemsArgs) -> Result<ExitCode> {
    if let Some(dir) = &args.journal_dir {
        return super::fleet::problems(dir, args);
    }
    let (selection, signature) = split_signature(&args.selection)?;
    let (source, crashes) = chosen(&selection, None)?;
    let (mut problems, unsigned) = group(&crashes);
    let latest = args.selection.latest;
    let mode = selection.json();
    let output = if mode.is_some() {
        Output::plain()
    } else {
        Output::start(selection.no_pager)
    };
    let mut out = String::new();
    match signature {
        None => {
            if latest {
                // The problem of the newest crash that has one.
                let newest = crashes
                    .iter()
                    .filter_map(|c| c.record.report().signature.clone().map(|s| (c.time(), s)))
                    .max_by_key(|(time, _)| *time)
                    .map(|(_, s)| s);
                problems.retain(|p| Some(&p.signature) == newest.as_ref());
            }
            arrange(&mut problems, args.count, false, selection.reverse);
            if let Some(mode) = mode {
                let items: Vec<_> = problems.iter().map(Problem::to_json).collect();
                print_json(mode, &items)?;
                return Ok(ExitCode::SUCCESS);
            }
            let heading = format!(
                "{:<16} {:>5} {:<23} {:<23} {:<12} PROBLEM (NEWEST CRASH)",
                "SIGNATURE", "COUNT", "FIRST SEEN", "LAST SEEN", "UIDS"
            );
            writeln!(out, "{}", output.bold(&heading))?;
            for problem in &problems {
                let users: Vec<String> = problem.users().iter().map(ToString::to_string).collect();
                writeln!(
                    out,
                    "{:<16} {:>5} {:<23} {:<23} {:<12} {} ({})",
                    &problem.signature[..problem.signature.len().min(16)],
                    problem.crashes.len(),
                    time(problem.first()),
                    time(problem.last()),
                    users.join(","),
                    escape(&problem.title),
                    problem
                        .newest()
                        .map(|c| escape(&c.record_path.to_string_lossy()))
                        .unwrap_or_default()
                )?;
            }
            if unsigned > 0 && !latest {
                writeln!(
                    out,
                    "{unsigned} crash{} without a report (info says why)",
                    if unsigned == 1 { "" } else { "es" }
                )?;
            }
        }
        Some(wanted) => {
            let place = source.dir.display();
            let found = find_signature(
                problems.iter().map(|p| p.signature.as_str()),
                &wanted,
                &place,
            )?
            .to_owned();
            let problem = problems
                .iter_mut()
                .find(|p| p.signature == found)
                .expect("found among them");
            let count = if latest { Some(1) } else { args.count };
            arrange(
                &mut problem.crashes,
                count,
                true,
                selection.reverse || latest,
            );
            if let Some(mode) = mode {
                let mut json = problem.to_json();
                json["crashes"] = problem.crashes.iter().map(|c| c.to_json()).collect();
                print_json(mode, &[json])?;
                return Ok(ExitCode::SUCCESS);
            }
            writeln!(out, "Problem: {}", escape(&problem.title))?;
            writeln!(out, "Signature: {}", problem.signature)?;
            writeln!(out, "Crashes: {}", problem.crashes.len())?;
            let heading = format!(
                "{:<23} {:>7} {:>6} {:<32} RECORD",
                "TIME", "PID", "UID", "CRASH ID"
            );
            writeln!(out, "{}", output.bold(&heading))?;
            for crash in &problem.crashes {
                writeln!(
                    out,
                    "{:<23} {:>7} {:>6} {:<32} {}",
                    time(crash.time()),
                    crash.pid().map(|p| p.to_string()).unwrap_or("-".into()),
                    crash.uid().map(|u| u.to_string()).unwrap_or("-".into()),
                    crash
                        .record
                        .crashed()
                        .crash_id
                        .as_deref()
                        .map(escape)
                        .unwrap_or("-".into()),
                    escape(&crash.record_path.to_string_lossy())
                )?;
            }
        }
    }
    emit(output, &out)?;
    Ok(ExitCode::SUCCESS)
}
