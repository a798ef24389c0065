//! One uid's share of what the crashes being handled hold, in pipe mode:
//! each crash holds one of the kernel's `core_pipe_limit` slots until its
//! core is read (the kernel skips, without a word to us, the dump of every
//! crash past the limit), so a user whose dumps stall would otherwise
//! leave no slot for anyone else's crash.
//!
//! A crash is *within* its uid's share when fewer than the share
//! (`max_crashes_in_progress_per_user`) of that uid's crashes are being
//! handled: it takes one of the uid's slot files
//! (`/run/lttng-coredump-shares/UID.K`, K below the share) with an
//! exclusive non-blocking `flock` and holds it until its core is read. The
//! lock is the kernel's: exact under a storm of simultaneous crashes, and
//! let go when a handler dies. A crash that finds every slot file of its
//! uid locked is *past* its share: the handler then takes nothing of the
//! user's time (no fire in the user's own session daemon) and aborts the
//! FUSE connections its dump waits on after [`PAST_SHARE_STALL`] without
//! progress (not `core_stall_timeout`), so that it holds its kernel slot
//! only as long as its dump makes progress.
//!
//! A slot file lives only while a crash holds it: the crash removes it
//! when it lets go, under its lock, and each crash that takes a slot first
//! removes the ones a killed handler left (those it can lock). A file is
//! removed only by whoever holds its lock, and a crash that locked a file
//! checks that the name still leads to it (else it was removed meanwhile,
//! and the crash tries that slot again): so the count stays exact, and the
//! directory holds no more than the crashes in progress.
//!
//! Socket mode has its own share of the service's workers (`fair_queue`).

use rustix::fs::{FlockOperation, Mode, OFlags};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

/// Where the slot files are (root's only: /run is writable by root alone).
pub const SHARE_DIR: &str = "/run/lttng-coredump-shares";
/// How long the dump of a crash past its uid's share may make no progress
/// before the FUSE connections it waits on are aborted.
pub const PAST_SHARE_STALL: Duration = Duration::from_secs(2);

/// Where a crash stands in its uid's share.
#[derive(Debug)]
pub enum Share {
    /// Within it: the slot file held until the core is read.
    Within(Held),
    /// Past it: `share` crashes of the uid are being handled.
    Past { share: u32 },
    /// Not counted (no share configured, the uid unknown, or the slot
    /// files unusable: a crash never loses anything for want of
    /// bookkeeping); why.
    NotCounted(String),
}

impl Share {
    /// The crash is past its uid's share.
    pub fn is_past(&self) -> bool {
        matches!(self, Share::Past { .. })
    }
}

/// A slot file of a uid's share, locked: dropped, the file is removed
/// (still under its lock) and the slot is free.
#[derive(Debug)]
pub struct Held {
    dir: OwnedFd,
    name: String,
    _file: OwnedFd,
}

impl Drop for Held {
    fn drop(&mut self) {
        // Only the holder of a file's lock removes it; `_file` (the lock)
        // is closed after this.
        let _ = rustix::fs::unlinkat(&self.dir, self.name.as_str(), rustix::fs::AtFlags::empty());
    }
}

/// Slot files looked at, at most, by one crash's pruning.
const MAX_PRUNED: usize = 256;

/// The share a uid gets of a pool of `pool` (the kernel's core_pipe_limit,
/// or the service's workers; 0: unlimited): the configured share, but
/// never the whole pool (one slot is always left to the other users).
/// `None`: no share.
pub fn effective(configured: u32, pool: u32) -> Option<u32> {
    match (configured, pool) {
        (0, _) => None,
        (share, 0) => Some(share),
        (share, pool) => Some(share.min(pool.saturating_sub(1)).max(1)),
    }
}

/// Takes a slot of `uid`'s share of `share` in `dir` (created root-only
/// when missing).
pub fn take(dir: &Path, uid: u32, share: u32) -> Share {
    let dir = match open_dir(dir) {
        Ok(dir) => dir,
        Err(err) => {
            return Share::NotCounted(format!(
                "cannot count the crashes in progress per user in {}: {err}",
                dir.display()
            ))
        }
    };
    prune(&dir);
    for slot in 0..share {
        let name = format!("{uid}.{slot}");
        // A file removed between our open and our lock is tried again (its
        // remover held its lock: it was free then).
        let mut tries = 0;
        let locked = loop {
            tries += 1;
            let file = match open_slot(&dir, &name) {
                Ok(file) => file,
                Err(err) => {
                    return Share::NotCounted(format!(
                        "cannot count the crashes in progress per user ({name}): {err}"
                    ))
                }
            };
            match lock_linked(&dir, &name, file) {
                Ok(Some(file)) => break Some(file),
                Ok(None) if tries < 16 => continue,
                Ok(None) => {
                    return Share::NotCounted(format!(
                        "cannot count the crashes in progress per user ({name}): it kept being \
                         removed under us"
                    ))
                }
                Err(rustix::io::Errno::WOULDBLOCK) => break None,
                Err(err) => {
                    return Share::NotCounted(format!(
                        "cannot count the crashes in progress per user ({name}): {err}"
                    ))
                }
            }
        };
        if let Some(file) = locked {
            return Share::Within(Held {
                dir,
                name,
                _file: file,
            });
        }
    }
    Share::Past { share }
}

/// Locks `file` (opened as `dir`/`name`) without waiting: `Ok(None)` when
/// it was removed before the lock was ours (the name leads elsewhere or
/// nowhere), `WOULDBLOCK` when another crash holds it.
fn lock_linked(dir: &OwnedFd, name: &str, file: OwnedFd) -> rustix::io::Result<Option<OwnedFd>> {
    rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive)?;
    let ours = rustix::fs::fstat(&file)?;
    match rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
        Ok(linked) if linked.st_dev == ours.st_dev && linked.st_ino == ours.st_ino => {
            Ok(Some(file))
        }
        Ok(_) | Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Removes the slot files nobody holds (left by handlers killed before
/// they let go), each under its lock; at most [`MAX_PRUNED`] looked at.
fn prune(dir: &OwnedFd) {
    let Ok(listing) = rustix::fs::Dir::read_from(dir) else {
        return;
    };
    let names: Vec<String> = listing
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str().ok().map(str::to_string))
        .filter(|name| is_slot_name(name))
        .take(MAX_PRUNED)
        .collect();
    for name in names {
        let Ok(file) = rustix::fs::openat(
            dir,
            name.as_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        if let Ok(Some(_locked)) = lock_linked(dir, &name, file) {
            let _ = rustix::fs::unlinkat(dir, name.as_str(), rustix::fs::AtFlags::empty());
        }
    }
}

/// `UID.K`, the name of a slot file.
fn is_slot_name(name: &str) -> bool {
    let Some((uid, slot)) = name.split_once('.') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(uid) && digits(slot)
}

/// The slot directory: made 0700 when missing; root's and writable by
/// root alone, never through a link.
fn open_dir(dir: &Path) -> std::io::Result<OwnedFd> {
    match rustix::fs::mkdir(dir, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(err) => return Err(err.into()),
    }
    let fd = rustix::fs::open(
        dir,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let stat = rustix::fs::fstat(&fd)?;
    if stat.st_uid != rustix::process::geteuid().as_raw() || stat.st_mode & 0o022 != 0 {
        return Err(std::io::Error::other(format!(
            "it is not this user's alone (owner uid {}, mode {:o})",
            stat.st_uid,
            stat.st_mode & 0o7777
        )));
    }
    Ok(fd)
}

/// A slot file (made 0600 when missing): a regular file of ours.
fn open_slot(dir: &OwnedFd, name: &str) -> std::io::Result<OwnedFd> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    let stat = rustix::fs::fstat(&fd)?;
    let regular =
        rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile;
    if !regular || stat.st_uid != rustix::process::geteuid().as_raw() {
        return Err(std::io::Error::other("not a regular file of ours"));
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_never_takes_the_whole_pool() {
        assert_eq!(effective(0, 64), None);
        assert_eq!(effective(4, 64), Some(4));
        assert_eq!(effective(4, 0), Some(4));
        assert_eq!(effective(64, 16), Some(15));
        assert_eq!(effective(4, 1), Some(1));
    }

    #[test]
    fn simultaneous_crashes_of_one_uid_get_exactly_its_share() {
        let dir = std::env::temp_dir().join(format!("handler-share-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Twenty at once, each with its own open files (as handlers are).
        let shares: Vec<Share> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..20)
                .map(|_| scope.spawn(|| take(&dir, 1234, 3)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let within = shares
            .iter()
            .filter(|s| matches!(s, Share::Within(_)))
            .count();
        assert_eq!(within, 3, "{shares:?}");
        assert!(shares
            .iter()
            .all(|s| matches!(s, Share::Within(_) | Share::Past { share: 3 })));
        // Another uid has its own share.
        assert!(matches!(take(&dir, 99, 3), Share::Within(_)));
        // A slot freed is taken again.
        drop(shares);
        assert!(matches!(take(&dir, 1234, 3), Share::Within(_)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn slot_files_live_only_while_held_and_stale_ones_are_pruned() {
        let dir = std::env::temp_dir().join(format!("handler-share-prune-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let names = || {
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        };
        let first = take(&dir, 1000, 2);
        let second = take(&dir, 1000, 2);
        assert_eq!(names(), ["1000.0", "1000.1"]);
        assert!(take(&dir, 1000, 2).is_past());
        drop(first);
        assert_eq!(names(), ["1000.1"]);
        drop(second);
        assert!(names().is_empty());
        // Files a killed handler left (nobody holds them) go with the next
        // crash of any uid; a held one stays, and so does a file that is
        // not a slot's.
        std::fs::write(dir.join("1001.0"), "").unwrap();
        std::fs::write(dir.join("1002.3"), "").unwrap();
        std::fs::write(dir.join("notes"), "").unwrap();
        let held = take(&dir, 1003, 1);
        assert_eq!(names(), ["1003.0", "notes"]);
        let other = take(&dir, 1004, 1);
        assert_eq!(names(), ["1003.0", "1004.0", "notes"]);
        drop((held, other));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_slot_removed_between_open_and_lock_is_taken_again() {
        let dir = std::env::temp_dir().join(format!("handler-share-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let fd = open_dir(&dir).unwrap();
        // A crash opened 5.0; before it locked it, the file was pruned and
        // another crash made and took a new 5.0.
        let opened = open_slot(&fd, "5.0").unwrap();
        std::fs::remove_file(dir.join("5.0")).unwrap();
        let other = take(&dir, 5, 1);
        assert!(matches!(other, Share::Within(_)));
        // The late lock is on a file no longer linked: not a slot.
        assert!(matches!(lock_linked(&fd, "5.0", opened), Ok(None)));
        // While the other holds 5.0, a share of 1 is full.
        assert!(take(&dir, 5, 1).is_past());
        drop(other);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_planted_slot_is_not_trusted() {
        let dir = std::env::temp_dir().join(format!("handler-share-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("7.0")).unwrap();
        assert!(matches!(take(&dir, 7, 2), Share::NotCounted(_)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
