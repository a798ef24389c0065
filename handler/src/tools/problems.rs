//! `problems`: the crashes grouped by their signature (the record's
//! `report.signature`, see `lttng_coredump_report::signature`), one bug one
//! line: how many crashes, first and last seen, the program, the users, the
//! newest crash; `problems SIGNATURE` lists that problem's crashes. Only
//! the crashes the caller may read count, as in `list`; those without a
//! report (turned off, no core, analysis failed) are counted apart.

use super::select::local_time;
use super::source::Source;
use super::ProblemsArgs;
use crate::base::human::escape;
use crate::store::crashes::{Crash, Store};
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

pub fn run(args: &ProblemsArgs) -> Result<ExitCode> {
    if let Some(dir) = &args.journal_dir {
        return super::fleet::problems(dir, args);
    }
    let source = Source::resolve(&args.source)?;
    if args.source.dir.is_none() {
        source.warn(false);
    }
    let (crashes, skipped) = Store::at(&source.dir).crashes()?;
    for line in &skipped {
        eprintln!("lttng-coredump: {line}");
    }
    let (problems, unsigned) = group(&crashes);
    let mut out = String::new();
    match &args.signature {
        None => {
            if args.json {
                for problem in &problems {
                    writeln!(out, "{}", problem.to_json())?;
                }
            } else {
                writeln!(
                    out,
                    "{:<16} {:>5} {:<23} {:<23} {:<12} PROBLEM (NEWEST CRASH)",
                    "SIGNATURE", "COUNT", "FIRST SEEN", "LAST SEEN", "UIDS"
                )?;
                for problem in &problems {
                    let users: Vec<String> =
                        problem.users().iter().map(ToString::to_string).collect();
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
                if unsigned > 0 {
                    writeln!(
                        out,
                        "{unsigned} crash{} without a report (info says why)",
                        if unsigned == 1 { "" } else { "es" }
                    )?;
                }
            }
        }
        Some(wanted) => {
            let wanted = wanted.to_ascii_lowercase();
            if wanted.len() < 8 || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("a signature is at least 8 hexadecimal digits (as `problems` prints them)");
            }
            let matching: Vec<&Problem<'_>> = problems
                .iter()
                .filter(|p| p.signature.starts_with(&wanted))
                .collect();
            let problem = match matching.as_slice() {
                [one] => one,
                [] => bail!("no problem has the signature {wanted}"),
                _ => bail!("{wanted} is the start of several signatures: give more digits"),
            };
            if args.json {
                let mut json = problem.to_json();
                json["crashes"] = problem.crashes.iter().map(|c| c.to_json()).collect();
                writeln!(out, "{json}")?;
            } else {
                writeln!(out, "Problem: {}", escape(&problem.title))?;
                writeln!(out, "Signature: {}", problem.signature)?;
                writeln!(out, "Crashes: {}", problem.crashes.len())?;
                writeln!(
                    out,
                    "{:<23} {:>7} {:>6} {:<32} RECORD",
                    "TIME", "PID", "UID", "CRASH ID"
                )?;
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
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}
