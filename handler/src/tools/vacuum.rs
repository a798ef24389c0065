//! `vacuum`: the retention rules applied now rather than at the next
//! crash: cores and records older than `max_age` are deleted, then the
//! oldest cores until the core directory is within `max_dir_size` and its
//! filesystem keeps `min_free` (those records, small and saying where the
//! trace is, are kept, as the handler does).

use super::store::Store;
use super::SourceArgs;
use crate::space::{self, SpacePolicy};
use anyhow::{anyhow, Result};
use std::os::fd::AsFd;
use std::process::ExitCode;

pub fn run(source: &SourceArgs) -> Result<ExitCode> {
    let store = Store::open(source);
    if let Some(error) = &store.config_error {
        eprintln!("lttng-coredump: warning: {error}");
    }
    // The same checks as the handler's: never delete in a directory
    // someone else could have swapped.
    let dir = crate::coredir::open_checked(&store.dir, false)
        .map_err(|err| anyhow!("core directory {}: {err}", store.dir.display()))?;
    let policy = SpacePolicy {
        max_dir_size: store.config.max_dir_size,
        min_free: store.config.min_free,
    };
    let mut expired = Vec::new();
    if let Some(max_age) = store.config.max_age {
        expired =
            crate::retention::expire(dir.fd.as_fd(), max_age, std::time::SystemTime::now())
                .map_err(|err| anyhow!("cannot apply max_age in {}: {err}", dir.path.display()))?;
        for name in &expired {
            println!(
                "deleted {} (older than max_age)",
                dir.path.join(name).display()
            );
        }
    }
    // Room for one byte: deletes exactly what the limits require.
    let (room, deleted) = space::make_room(
        dir.fd.as_fd(),
        policy,
        1,
        0,
        // No crash of its own: every user's latest core is kept.
        space::Claimant {
            uid: None,
            own_stem: None,
        },
    )
    .map_err(|err| anyhow!("cannot apply the limits in {}: {err}", dir.path.display()))?;
    for name in &deleted {
        println!("deleted {}", dir.path.join(name).display());
    }
    println!(
        "{} deleted; room for {} more (directory limit {}, keeping {} free{})",
        match deleted.len() + expired.len() {
            0 => "nothing".to_string(),
            1 => "1 file".to_string(),
            n => format!("{n} files"),
        },
        super::human::size(room),
        super::human::size(store.config.max_dir_size),
        super::human::size(store.config.min_free),
        match store.config.max_age {
            Some(age) => format!(", nothing older than {}", super::human::duration(age)),
            None => String::new(),
        }
    );
    Ok(ExitCode::SUCCESS)
}
