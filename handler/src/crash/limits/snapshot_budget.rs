//! The budget of the snapshots the handler takes itself, so that a crash
//! loop cannot fill a disk through them.
//!
//! Which snapshots: those of the configured `snapshot_sessions` and of the
//! fallback to every active snapshot session (`snapshot_active_sessions`),
//! taken in the root session daemon on every crash of any user. Trigger
//! snapshots are their owners' (each runs with its owner's rights, into
//! the outputs its owner chose) and are not counted here.
//!
//! Where the budget applies:
//! - before firing: at most `max_snapshots_per_minute` crashes a minute get
//!   them, and of those at most `max_snapshots_per_user_per_minute` of one
//!   uid (root's included: each uid has that share, within the total, so
//!   one user's crash loop leaves the rest of the budget to the others'
//!   crashes); counted in the core directory's ledger, under its lock; past
//!   either a crash fires only the triggers, and its record says why;
//! - after firing: every snapshot directory so made is noted in the ledger
//!   (path, device and inode, size, time), and the oldest noted ones are
//!   deleted while there are more than `max_snapshot_dirs`, while they take
//!   more than `max_snapshot_size`, or once older than `max_snapshot_age`.
//!
//! Only what the handler itself made, as it noted it, is ever deleted: the
//! directory at the noted path must still be the noted one (same device
//! and inode), owned by root, reached from `/` without following a
//! symbolic link through directories owned by root and writable by nobody
//! else (or sticky, as /tmp), and it is removed through descriptors, never
//! following a link.

use crate::store::ledger::{Entry, Ledger};
use crate::store::record::DaemonFire;
use lttng_coredump_engine::ActionKind;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::ffi::{CStr, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::time::Duration;

/// The budget, from the configuration (0: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub per_minute: u32,
    pub per_user: u32,
    pub max_dirs: u32,
    pub max_bytes: u64,
    pub max_age: Duration,
}

/// Deepest snapshot tree removed (`ust/uid/0/64-bit/...` is 5 deep).
const MAX_DEPTH: usize = 16;

/// Stands for a uid the kernel did not give.
const UNKNOWN_UID: u32 = u32::MAX;

/// Whether this crash of `uid` may get the handler's own snapshots:
/// `None`, or why not (to log and record).
pub fn admit(
    dir: BorrowedFd<'_>,
    now: i64,
    uid: Option<u32>,
    budget: Budget,
) -> Result<Option<String>, String> {
    let mut ledger = Ledger::lock(dir).map_err(|err| {
        format!("cannot use the core directory's ledger for the snapshot budget: {err}")
    })?;
    let limits = crate::store::ledger::SnapshotLimits {
        per_minute: budget.per_minute,
        per_user: budget.per_user,
    };
    crate::store::ledger::admit_snapshot_fire(&mut ledger, now, uid.unwrap_or(UNKNOWN_UID), limits)
        .map_err(|err| format!("cannot update the core directory's ledger: {err}"))
}

/// The snapshot directories the handler's own snapshots made in this fire:
/// root daemon, no trigger, a local path.
pub fn own_snapshot_dirs(fires: &[DaemonFire]) -> Vec<String> {
    fires
        .iter()
        .filter(|fire| fire.daemon == "root")
        .filter_map(|fire| fire.report.as_ref())
        .flat_map(|report| &report.outcomes)
        .filter(|o| o.trigger_name.is_none() && o.action == ActionKind::Snapshot)
        .filter_map(|o| o.snapshot_path.clone())
        .filter(|path| path.starts_with('/') && !path.contains(", "))
        .collect()
}

/// Notes the directories `made` in the ledger, then deletes the oldest
/// noted ones past the budget. Returns the paths deleted and the problems.
pub fn note_and_prune(
    dir: BorrowedFd<'_>,
    now: i64,
    made: &[String],
    budget: Budget,
) -> (Vec<String>, Vec<String>) {
    let mut errors = Vec::new();
    let mut ledger = match Ledger::lock(dir) {
        Ok(ledger) => ledger,
        Err(err) => {
            errors.push(format!(
                "cannot use the core directory's ledger for the snapshot budget: {err}"
            ));
            return (Vec::new(), errors);
        }
    };
    for path in made {
        match open_checked(Path::new(path)) {
            Ok(fd) => {
                let stat = rustix::fs::fstat(&fd);
                let bytes = tree_bytes(fd.as_fd(), 0);
                if let Ok(stat) = stat {
                    ledger.entries.push(Entry::SnapshotDir {
                        time: now,
                        path: path.clone(),
                        dev: stat.st_dev,
                        ino: stat.st_ino,
                        bytes,
                    });
                }
            }
            Err(err) => errors.push(format!(
                "snapshot {path} is left out of the snapshot budget: {err}"
            )),
        }
    }
    let mut noted: Vec<(i64, String, u64, u64, u64)> = Vec::new();
    ledger.entries.retain(|entry| match entry {
        Entry::SnapshotDir {
            time,
            path,
            dev,
            ino,
            bytes,
        } => {
            noted.push((*time, path.clone(), *dev, *ino, *bytes));
            false
        }
        _ => true,
    });
    noted.sort_by_key(|(time, ..)| *time);
    let mut total: u64 = noted.iter().map(|n| n.4).sum();
    let mut count = noted.len();
    let mut deleted = Vec::new();
    let mut kept = Vec::new();
    for (time, path, dev, ino, bytes) in noted {
        let too_many = budget.max_dirs > 0 && count > budget.max_dirs as usize;
        let too_big = budget.max_bytes > 0 && total > budget.max_bytes;
        let too_old =
            !budget.max_age.is_zero() && now.saturating_sub(time) > budget.max_age.as_secs() as i64;
        if too_many || too_big || too_old {
            match remove_noted(Path::new(&path), dev, ino) {
                Ok(()) => deleted.push(path),
                // Gone, replaced or unsafe: forgotten, never retried.
                Err(err) => errors.push(format!("snapshot {path} not deleted: {err}")),
            }
            count -= 1;
            total = total.saturating_sub(bytes);
            continue;
        }
        kept.push(Entry::SnapshotDir {
            time,
            path,
            dev,
            ino,
            bytes,
        });
    }
    ledger.entries.extend(kept);
    if let Err(err) = ledger.save() {
        errors.push(format!("cannot update the core directory's ledger: {err}"));
    }
    (deleted, errors)
}

/// Opens the directory at `path` from `/`, one component at a time without
/// following a link, through directories owned by root and writable by
/// nobody else (or sticky); the directory itself must be root's.
fn open_checked(path: &Path) -> Result<OwnedFd, String> {
    let mut fd = rustix::fs::open(
        "/",
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| format!("cannot open /: {err}"))?;
    let mut at = std::path::PathBuf::from("/");
    for component in path.components() {
        let Component::Normal(name) = component else {
            if component == Component::RootDir {
                continue;
            }
            return Err(format!("{} is not a plain path", path.display()));
        };
        let stat = rustix::fs::fstat(&fd).map_err(|err| format!("{}: {err}", at.display()))?;
        // A sticky directory of root's (/tmp) is safe too: nobody else may
        // rename or replace root's entries in it.
        let sticky = stat.st_mode & 0o1000 != 0;
        if stat.st_uid != 0 || (stat.st_mode & 0o022 != 0 && !sticky) {
            return Err(format!(
                "{} is not root's only (owner uid {}, mode {:o})",
                at.display(),
                stat.st_uid,
                stat.st_mode & 0o7777
            ));
        }
        at.push(name);
        fd = rustix::fs::openat(
            &fd,
            name,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|err| format!("{}: {err}", at.display()))?;
    }
    let stat = rustix::fs::fstat(&fd).map_err(|err| format!("{}: {err}", at.display()))?;
    if stat.st_uid != 0 {
        return Err(format!("{} is owned by uid {}", at.display(), stat.st_uid));
    }
    Ok(fd)
}

/// Bytes a tree takes on disk.
fn tree_bytes(dir: BorrowedFd<'_>, depth: usize) -> u64 {
    let Ok(entries) = rustix::fs::Dir::read_from(dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let Ok(stat) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        total += stat.st_blocks as u64 * 512;
        if FileType::from_raw_mode(stat.st_mode) == FileType::Directory && depth < MAX_DEPTH {
            if let Ok(child) = open_child(dir, name) {
                total += tree_bytes(child.as_fd(), depth + 1);
            }
        }
    }
    total
}

fn open_child(dir: BorrowedFd<'_>, name: &CStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Removes the noted snapshot directory, if it still is the one noted.
fn remove_noted(path: &Path, dev: u64, ino: u64) -> Result<(), String> {
    let parent = path.parent().ok_or("no parent directory")?;
    let name = path.file_name().ok_or("no name")?;
    let parent_fd = open_checked(parent)?;
    let fd = open_child(parent_fd.as_fd(), &c_name(name)?)
        .map_err(|err| format!("cannot open it: {err}"))?;
    let stat = rustix::fs::fstat(&fd).map_err(|err| err.to_string())?;
    if (stat.st_dev, stat.st_ino) != (dev, ino) {
        return Err("it is not the directory the handler made".into());
    }
    empty_tree(fd.as_fd(), 0)?;
    rustix::fs::unlinkat(&parent_fd, c_name(name)?.as_c_str(), AtFlags::REMOVEDIR)
        .map_err(|err| format!("cannot remove it: {err}"))
}

fn c_name(name: &OsStr) -> Result<std::ffi::CString, String> {
    std::ffi::CString::new(name.as_bytes()).map_err(|_| "a NUL in the name".to_string())
}

/// Deletes everything in `dir`, through descriptors, never following a
/// link.
fn empty_tree(dir: BorrowedFd<'_>, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("deeper than a snapshot".into());
    }
    let names: Vec<std::ffi::CString> = rustix::fs::Dir::read_from(dir)
        .map_err(|err| err.to_string())?
        .flatten()
        .map(|entry| entry.file_name().to_owned())
        .filter(|name| name.as_bytes() != b"." && name.as_bytes() != b"..")
        .collect();
    for name in names {
        let stat = rustix::fs::statat(dir, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|err| err.to_string())?;
        if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
            let child = open_child(dir, name.as_c_str()).map_err(|err| err.to_string())?;
            empty_tree(child.as_fd(), depth + 1)?;
            rustix::fs::unlinkat(dir, name.as_c_str(), AtFlags::REMOVEDIR)
                .map_err(|err| err.to_string())?;
        } else {
            rustix::fs::unlinkat(dir, name.as_c_str(), AtFlags::empty())
                .map_err(|err| err.to_string())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_noted_directories_past_the_budget_go_and_nothing_else() {
        let base =
            std::path::PathBuf::from(format!("/run/handler-snapbudget-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let cores = base.join("cores");
        let traces = base.join("traces");
        std::fs::create_dir_all(&cores).unwrap();
        std::fs::create_dir_all(&traces).unwrap();
        let coredir = std::fs::File::open(&cores).unwrap();
        let make = |name: &str| {
            let path = traces.join(name);
            std::fs::create_dir_all(path.join("ust/uid/0/64-bit")).unwrap();
            std::fs::write(path.join("ust/uid/0/64-bit/metadata"), vec![1u8; 8192]).unwrap();
            std::os::unix::fs::symlink("/etc", path.join("ust/link")).unwrap();
            path.display().to_string()
        };
        let budget = Budget {
            per_minute: 0,
            per_user: 0,
            max_dirs: 2,
            max_bytes: 0,
            max_age: Duration::ZERO,
        };
        let (a, b, c) = (make("s-1-1"), make("s-2-2"), make("s-3-3"));
        for (time, path) in [(100, &a), (200, &b)] {
            let (deleted, errors) =
                note_and_prune(coredir.as_fd(), time, std::slice::from_ref(path), budget);
            assert!(
                deleted.is_empty() && errors.is_empty(),
                "{deleted:?} {errors:?}"
            );
        }
        // A directory put in place of a noted one is not the noted one.
        std::fs::rename(&b, traces.join("moved")).unwrap();
        std::fs::create_dir(&b).unwrap();
        let (deleted, errors) =
            note_and_prune(coredir.as_fd(), 300, std::slice::from_ref(&c), budget);
        assert_eq!(deleted, [a.as_str()]);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(!Path::new(&a).exists());
        assert!(Path::new("/etc/passwd").exists());
        // By age: b is past it, but it is not what was noted: left alone.
        let aged = Budget {
            max_age: Duration::from_secs(50),
            max_dirs: 0,
            ..budget
        };
        let (deleted, errors) = note_and_prune(coredir.as_fd(), 360, &[], aged);
        assert_eq!(deleted, [c.as_str()]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(Path::new(&b).exists() && traces.join("moved").exists());
        // A path through a directory others may write is never noted.
        let open = base.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        std::fs::create_dir(open.join("s")).unwrap();
        let (_, errors) = note_and_prune(
            coredir.as_fd(),
            400,
            &[open.join("s").display().to_string()],
            budget,
        );
        assert!(errors[0].contains("not root's only"), "{errors:?}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn only_the_handlers_own_local_snapshots_count() {
        use lttng_coredump_engine::{ActionOutcome, FireReport};
        let outcome = |trigger: Option<&str>, path: &str| ActionOutcome {
            trigger_name: trigger.map(str::to_string),
            owner_uid: None,
            session: "s".into(),
            action: ActionKind::Snapshot,
            snapshot_path: Some(path.into()),
            error: None,
        };
        let fire = |daemon: &str| DaemonFire {
            daemon: daemon.into(),
            target: None,
            report: Some(FireReport {
                outcomes: vec![
                    outcome(None, "/traces/own"),
                    outcome(Some("t"), "/traces/trigger"),
                    outcome(None, "net://relay (x)"),
                ],
                ..Default::default()
            }),
            error: None,
        };
        assert_eq!(
            own_snapshot_dirs(&[fire("root"), fire("user 1000")]),
            ["/traces/own"]
        );
    }
}
