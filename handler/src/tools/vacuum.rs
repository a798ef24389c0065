//! `vacuum`: the retention rules applied now rather than at the next
//! crash: cores and records older than `max_age` are deleted, then the
//! oldest crashes (each core with its records) until the core directory is
//! within `max_dir_size` and its filesystem keeps `min_free`, never a
//! user's newest core (as the handler does). It says what it deleted and
//! what it kept, and why; `--dry-run` says the same and deletes nothing.

use super::source::Source;
use super::VacuumArgs;
use crate::base::human;
use crate::store::space::{self, Fate, SpacePolicy};
use anyhow::{anyhow, Result};
use std::os::fd::AsFd;
use std::process::ExitCode;

pub fn run(args: &VacuumArgs) -> Result<ExitCode> {
    let source = Source::resolve(&args.source)?;
    source.warn(args.quiet);
    let config = &source.config;
    // The same checks as the handler's: never delete in a directory
    // someone else could have swapped.
    let dir = crate::store::coredir::open_checked(&source.dir, false)
        .map_err(|err| anyhow!("core directory {}: {err}", source.dir.display()))?;
    let policy = SpacePolicy {
        max_dir_size: config.max_dir_size,
        min_free: config.min_free,
    };
    let (would, done) = if args.dry_run {
        ("would delete", "would be deleted")
    } else {
        ("deleted", "deleted")
    };
    let now = std::time::SystemTime::now();
    let mut expired = Vec::new();
    if let Some(max_age) = config.max_age {
        expired = if args.dry_run {
            crate::store::retention::expired(dir.fd.as_fd(), max_age, now)
        } else {
            crate::store::retention::expire(dir.fd.as_fd(), max_age, now)
        }
        .map_err(|err| anyhow!("cannot apply max_age in {}: {err}", dir.path.display()))?;
        for name in &expired {
            println!(
                "{would} {} (older than max_age, {})",
                dir.path.join(name).display(),
                human::duration(max_age)
            );
        }
    }
    // What goes for the size limits, and why each of the rest stays. The
    // expired ones are already gone (or, in a dry run, set aside).
    let plan = space::plan(dir.fd.as_fd(), policy)
        .map_err(|err| anyhow!("cannot apply the limits in {}: {err}", dir.path.display()))?;
    let planned: Vec<_> = plan
        .crashes
        .iter()
        .filter(|c| !expired.contains(&c.name))
        .collect();
    let (room, deleted) = if args.dry_run {
        let goes = planned
            .iter()
            .filter(|c| c.fate == Fate::Goes)
            .map(|c| c.name.clone())
            .collect::<Vec<_>>();
        (plan.room, goes)
    } else {
        // Room for one byte: deletes exactly what the limits require, as
        // the handler does; no crash of its own: every user's latest core
        // is kept.
        space::make_room(dir.fd.as_fd(), policy, 1, 0, space::Claimant::default())
            .map_err(|err| anyhow!("cannot apply the limits in {}: {err}", dir.path.display()))?
    };
    for name in &deleted {
        println!(
            "{would} {} (the oldest, to keep the directory within max_dir_size {} and {} free)",
            dir.path.join(name).display(),
            human::size(config.max_dir_size),
            human::size(config.min_free)
        );
    }
    if !args.quiet {
        for crash in planned.iter().filter(|c| !deleted.contains(&c.name)) {
            let why = match crash.fate {
                Fate::NewestOfItsUser => match crash.owner {
                    Some(uid) => {
                        format!("the newest core of uid {uid}: each user's newest core is kept")
                    }
                    None => "the newest core of its user: each user's newest core is kept".into(),
                },
                Fate::NoUse => "deleting every older crash would still leave no room: the \
                                filesystem is full of something else"
                    .into(),
                Fate::WithinLimits | Fate::Goes => "within the limits".into(),
            };
            println!(
                "kept {} ({}, {why})",
                dir.path.join(&crash.name).display(),
                human::size(crash.bytes)
            );
        }
    }
    println!(
        "{} {done}; room for {} more (directory limit {}, keeping {} free{})",
        match deleted.len() + expired.len() {
            0 => "nothing".to_string(),
            1 => "1 file".to_string(),
            n => format!("{n} files"),
        },
        human::size(room),
        human::size(config.max_dir_size),
        human::size(config.min_free),
        match config.max_age {
            Some(age) => format!(", nothing older than {}", human::duration(age)),
            None => String::new(),
        }
    );
    Ok(ExitCode::SUCCESS)
}
