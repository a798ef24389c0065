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

/// A slot file of a uid's share, locked: dropped, the slot is free.
#[derive(Debug)]
pub struct Held {
    _file: OwnedFd,
}

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
    for slot in 0..share {
        let name = format!("{uid}.{slot}");
        let file = match open_slot(&dir, &name) {
            Ok(file) => file,
            Err(err) => {
                return Share::NotCounted(format!(
                    "cannot count the crashes in progress per user ({name}): {err}"
                ))
            }
        };
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Share::Within(Held { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => continue,
            Err(err) => {
                return Share::NotCounted(format!(
                    "cannot count the crashes in progress per user ({name}): {err}"
                ))
            }
        }
    }
    Share::Past { share }
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
    fn a_planted_slot_is_not_trusted() {
        let dir = std::env::temp_dir().join(format!("handler-share-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("7.0")).unwrap();
        assert!(matches!(take(&dir, 7, 2), Share::NotCounted(_)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
