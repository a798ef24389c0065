//! How much a new core (or a crash record) may still store in the core
//! directory, given the free space to keep on its filesystem and the
//! maximum total size of the directory; makes room by deleting the oldest
//! crashes first, each crash's core with its records, but never another
//! user's most recent core.
//!
//! Cores and records carry the crashing uid in a `trusted.` attribute
//! (only root can set or change one), so that a crash loop of one user
//! can make room only from its own crashes and from other users' older
//! ones: every other user keeps their latest core.

use crate::store::ledger::{self, ReservationId};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};

/// Always left free beyond the configured floor, so the crash record can
/// still be written after a core used all the room it was given.
pub const RECORD_RESERVE: u64 = 256 * 1024;
/// The attribute holding the uid of the crash a core or record is about.
pub const OWNER_XATTR: &str = "trusted.lttng-coredump.uid";

/// Serializes, across every handler of the machine, each "how much room is
/// left, then write it" step, so that handlers writing at once (a crash
/// storm) each see on the filesystem what the others wrote: without it each
/// could spend the same free space and together cut through the floor.
/// Root-only: /run is not writable by others, and the file is 0600.
pub const SPACE_LOCK: &str = "/run/lttng-coredump-space.lock";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpacePolicy {
    pub max_dir_size: u64,
    pub min_free: u64,
}

/// Whose crash is making room, and which crash must not go (its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Claimant<'a> {
    /// The crashing uid (`None`: unknown; then every user's latest core
    /// is kept).
    pub uid: Option<u32>,
    /// The name stem of the crash being written (see [`crash_stem`]).
    pub own_stem: Option<&'a [u8]>,
    /// The room the claimant reserved itself ([`reserve`]): not counted
    /// against it (what it holds in unnamed files is, as `unlisted`).
    pub own_reservation: Option<ReservationId>,
}

/// One crash in the directory: its core and records, as found when making
/// room.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredCrash {
    stem: Vec<u8>,
    files: Vec<CString>,
    core: Option<CString>,
    /// The core's modification time, or the newest record's.
    modified: (i64, i64),
    bytes: u64,
    owner: Option<u32>,
}

/// Whether a directory entry is a core this handler wrote (its records end
/// in `.json`; temporary files start with a dot).
pub fn is_core_name(name: &[u8]) -> bool {
    name.starts_with(b"core.") && !name.ends_with(b".json")
}

/// The crash a file of the core directory belongs to: its name without
/// `.report.json`, `.report.user[.N].json`, `.user.json`, `.json` or `.zst` (`core.NAME.PID.TIME[.N]`). `None` for
/// what is not a core or a record.
pub fn crash_stem(name: &[u8]) -> Option<&[u8]> {
    if !name.starts_with(b"core.") {
        return None;
    }
    if let Some(stem) = crate::store::report_file::stem_of(name) {
        return Some(stem);
    }
    Some(
        name.strip_suffix(b".user.json")
            .or_else(|| name.strip_suffix(b".json"))
            .or_else(|| name.strip_suffix(b".zst"))
            .unwrap_or(name),
    )
}

/// Marks a core or record as being about a crash of `uid`.
pub fn mark_owner(file: impl AsFd, uid: u32) -> std::io::Result<()> {
    rustix::fs::fsetxattr(
        file,
        OWNER_XATTR,
        uid.to_string().as_bytes(),
        rustix::fs::XattrFlags::empty(),
    )?;
    Ok(())
}

/// The uid a file of the directory is marked with.
fn owner_of(dir: BorrowedFd<'_>, name: &std::ffi::CStr) -> Option<u32> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut value = [0u8; 16];
    let length = rustix::fs::fgetxattr(&fd, OWNER_XATTR, &mut value[..]).ok()?;
    std::str::from_utf8(&value[..length]).ok()?.parse().ok()
}

/// Bytes the directory's regular files take on disk, and its crashes,
/// oldest first.
fn survey(dir: BorrowedFd<'_>) -> std::io::Result<(u64, Vec<StoredCrash>)> {
    let mut total = 0;
    let mut crashes: HashMap<Vec<u8>, StoredCrash> = HashMap::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let stat = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(_) => continue,
        };
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            continue;
        }
        let bytes = stat.st_blocks as u64 * 512;
        total += bytes;
        let Some(stem) = crash_stem(name.to_bytes()) else {
            continue;
        };
        let modified = (stat.st_mtime as i64, stat.st_mtime_nsec as i64);
        let is_core = is_core_name(name.to_bytes());
        let crash = crashes.entry(stem.to_vec()).or_insert_with(|| StoredCrash {
            stem: stem.to_vec(),
            files: Vec::new(),
            core: None,
            modified,
            bytes: 0,
            owner: None,
        });
        crash.files.push(name.to_owned());
        crash.bytes += bytes;
        if crash.owner.is_none() {
            crash.owner = owner_of(dir, name);
        }
        if is_core {
            crash.core = Some(name.to_owned());
            crash.modified = modified;
        } else if crash.core.is_none() {
            crash.modified = crash.modified.max(modified);
        }
    }
    let mut crashes: Vec<StoredCrash> = crashes.into_values().collect();
    crashes.sort_by(|a, b| a.modified.cmp(&b.modified).then(a.stem.cmp(&b.stem)));
    Ok((total, crashes))
}

/// The crashes that must not be deleted for `claimant`: the crash being
/// written, and every other user's most recent core.
fn protected(crashes: &[StoredCrash], claimant: Claimant<'_>) -> Vec<bool> {
    let mut latest: HashMap<u32, usize> = HashMap::new();
    for (index, crash) in crashes.iter().enumerate() {
        if let (Some(owner), Some(_)) = (crash.owner, &crash.core) {
            // Oldest first: the last seen is the most recent.
            latest.insert(owner, index);
        }
    }
    crashes
        .iter()
        .enumerate()
        .map(|(index, crash)| {
            let own = claimant.own_stem == Some(crash.stem.as_slice());
            let others_latest = crash.owner.is_some_and(|owner| {
                claimant.uid != Some(owner) && latest.get(&owner) == Some(&index)
            });
            own || others_latest
        })
        .collect()
}

/// What [`make_room`] would do for one byte with no claimant (what
/// `vacuum` does), worked out without deleting anything: each crash, by
/// its core's name (or its record's), oldest first, with whether it would
/// go and why it stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Bytes that may be stored once the crashes marked to go are gone.
    pub room: u64,
    pub crashes: Vec<Planned>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub name: String,
    pub bytes: u64,
    pub owner: Option<u32>,
    pub fate: Fate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Deleted to bring the directory within its limits.
    Goes,
    /// Kept: its user's newest core (every user keeps theirs).
    NewestOfItsUser,
    /// Kept: the directory is within its limits without deleting it.
    WithinLimits,
    /// Kept: deleting every crash that may go would still leave no room
    /// (the disk is full of something else), so none goes.
    NoUse,
}

/// See [`Plan`].
pub fn plan(dir: BorrowedFd<'_>, policy: SpacePolicy) -> std::io::Result<Plan> {
    let (used, crashes, free) = measure(dir, None)?;
    let mut room = room_for(free, used, policy);
    let keep = protected(&crashes, Claimant::default());
    let deletable: u64 = crashes
        .iter()
        .zip(&keep)
        .filter(|(_, kept)| !**kept)
        .map(|(crash, _)| crash.bytes)
        .sum();
    let no_use = room == 0 && room_for(free + deletable, used - deletable.min(used), policy) == 0;
    let mut freed = 0u64;
    let mut planned = Vec::new();
    for (crash, kept) in crashes.iter().zip(keep) {
        let fate = if kept {
            Fate::NewestOfItsUser
        } else if room >= 1 {
            Fate::WithinLimits
        } else if no_use {
            Fate::NoUse
        } else {
            freed += crash.bytes;
            room = room_for(free + freed, used.saturating_sub(freed), policy);
            Fate::Goes
        };
        let shown = crash.core.as_ref().or(crash.files.first());
        planned.push(Planned {
            name: shown
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
            bytes: crash.bytes,
            owner: crash.owner,
            fate,
        });
    }
    Ok(Plan {
        room,
        crashes: planned,
    })
}

/// Bytes that may be stored now, without deleting anything.
pub fn room(dir: BorrowedFd<'_>, policy: SpacePolicy) -> std::io::Result<u64> {
    let (used, _, free) = measure(dir, None)?;
    Ok(room_for(free, used, policy))
}

/// Bytes that may be stored before the free-space floor (and the record's
/// reserve) is reached, whatever the directory size limit says; the room
/// others reserved (`reserved`: [`ledger::reserved`] of all but the
/// caller's own) is not free.
pub fn room_above_floor(
    dir: BorrowedFd<'_>,
    policy: SpacePolicy,
    reserved: u64,
) -> std::io::Result<u64> {
    let free = free_bytes(dir)?.saturating_sub(reserved);
    Ok(free.saturating_sub(policy.min_free.saturating_add(RECORD_RESERVE)))
}

/// The bytes the directory holds and its crashes ([`survey`]), and the free
/// bytes of its file system, the room reserved by live cores under way
/// (all but `own`; see [`reserve`]) counted as held and not free.
///
/// A reservation is counted whole on both sides while what its holder has
/// already written (its staging file, its unnamed core) also shows in the
/// free space: counted twice there, on the safe side, until it is
/// released (a crash written meanwhile may be cut earlier than it needs).
fn measure(
    dir: BorrowedFd<'_>,
    own: Option<ReservationId>,
) -> std::io::Result<(u64, Vec<StoredCrash>, u64)> {
    let (used, crashes) = survey(dir)?;
    let reserved = ledger::reserved(dir, own);
    let free = free_bytes(dir)?.saturating_sub(reserved);
    Ok((used.saturating_add(reserved), crashes, free))
}

/// Room reserved in the core directory (a ledger entry, see
/// [`ledger::Entry::Reservation`]) until dropped; a holder killed leaves an
/// entry that counts no more (its pid and start time name no process).
#[derive(Debug)]
pub struct Reservation {
    dir: std::os::fd::OwnedFd,
    pub id: ReservationId,
    pub bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let _ = ledger::remove_reservation(self.dir.as_fd(), self.id);
    }
}

/// Measures the room the directory has now (without deleting anything,
/// the room others reserved taken out) and reserves `wanted(room)` bytes of
/// it, in one step under the space lock: two live cores taken at once never
/// both see the same room. Returns the room and the reservation (none for
/// 0 bytes).
pub fn reserve(
    dir: BorrowedFd<'_>,
    policy: SpacePolicy,
    now: i64,
    wanted: impl FnOnce(u64) -> u64,
) -> std::io::Result<(u64, Option<Reservation>)> {
    with_space_lock(|| {
        let room = room(dir, policy)?;
        let bytes = wanted(room).min(room);
        if bytes == 0 {
            return Ok((room, None));
        }
        let id = ReservationId::new()
            .ok_or_else(|| std::io::Error::other("cannot read this process's start time"))?;
        ledger::add_reservation(dir, now, id, bytes)?;
        Ok((
            room,
            Some(Reservation {
                dir: dir.try_clone_to_owned()?,
                id,
                bytes,
            }),
        ))
    })
}

fn free_bytes(dir: BorrowedFd<'_>) -> std::io::Result<u64> {
    let stats = rustix::fs::fstatvfs(dir)?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

fn room_for(free: u64, used: u64, policy: SpacePolicy) -> u64 {
    let by_free = free.saturating_sub(policy.min_free.saturating_add(RECORD_RESERVE));
    let by_dir = policy.max_dir_size.saturating_sub(used);
    by_free.min(by_dir)
}

/// A record may use the reserve kept for it.
fn room_for_record(free: u64, used: u64, policy: SpacePolicy) -> u64 {
    let by_free = free.saturating_sub(policy.min_free);
    let by_dir = policy.max_dir_size.saturating_sub(used);
    by_free.min(by_dir)
}

/// Bytes that may be stored, after deleting the oldest crashes (each core
/// with its records) until `wanted` bytes fit or nothing more may go.
/// `unlisted` counts bytes already written to files not yet in the
/// directory's listing (the unnamed core being written). Nothing is deleted
/// when deleting everything that may go would still leave no room at all
/// (the disk is full of something else). Returns the room and the names
/// deleted (each crash by its core's name, or its record's).
pub fn make_room(
    dir: BorrowedFd<'_>,
    policy: SpacePolicy,
    wanted: u64,
    unlisted: u64,
    claimant: Claimant<'_>,
) -> std::io::Result<(u64, Vec<String>)> {
    make_room_with(dir, policy, wanted, unlisted, claimant, room_for)
}

/// [`make_room`] for a crash record of `wanted` bytes, which may use the
/// reserve kept for records ([`RECORD_RESERVE`]) but must stay within the
/// directory size limit and above the free-space floor.
pub fn make_room_for_record(
    dir: BorrowedFd<'_>,
    policy: SpacePolicy,
    wanted: u64,
    claimant: Claimant<'_>,
) -> std::io::Result<(u64, Vec<String>)> {
    make_room_with(dir, policy, wanted, 0, claimant, room_for_record)
}

fn make_room_with(
    dir: BorrowedFd<'_>,
    policy: SpacePolicy,
    wanted: u64,
    unlisted: u64,
    claimant: Claimant<'_>,
    room_for: fn(u64, u64, SpacePolicy) -> u64,
) -> std::io::Result<(u64, Vec<String>)> {
    let (listed, crashes, free) = measure(dir, claimant.own_reservation)?;
    let used = listed.saturating_add(unlisted);
    let mut room = room_for(free, used, policy);
    let mut deleted = Vec::new();
    if room >= wanted {
        return Ok((room, deleted));
    }
    let keep = protected(&crashes, claimant);
    let deletable: u64 = crashes
        .iter()
        .zip(&keep)
        .filter(|(_, kept)| !**kept)
        .map(|(crash, _)| crash.bytes)
        .sum();
    if room_for(free + deletable, used - deletable.min(used), policy) == 0 {
        return Ok((room, deleted));
    }
    let mut freed = 0u64;
    for (crash, kept) in crashes.iter().zip(keep) {
        if room >= wanted {
            break;
        }
        if kept {
            continue;
        }
        // The core first: a crash whose core could not go is left whole.
        let mut gone = 0;
        let files = crash.core.iter().chain(
            crash
                .files
                .iter()
                .filter(|f| Some(*f) != crash.core.as_ref()),
        );
        for (index, name) in files.enumerate() {
            if rustix::fs::unlinkat(dir, name.as_c_str(), AtFlags::empty()).is_ok() {
                gone += 1;
            } else if index == 0 {
                break;
            }
        }
        if gone == 0 {
            continue;
        }
        freed += crash.bytes;
        let shown = crash.core.as_ref().or(crash.files.first());
        if let Some(name) = shown {
            deleted.push(name.to_string_lossy().into_owned());
        }
        // Space freed by an unlink may show in statfs only later: count it.
        room = room_for(free + freed, used.saturating_sub(freed), policy);
    }
    Ok((room, deleted))
}

/// Runs `step` holding the machine-wide space lock ([`SPACE_LOCK`]), as
/// every "measure, then write" step of the handlers does (the step runs
/// unlocked when the lock cannot be had).
pub fn with_space_lock<R>(step: impl FnOnce() -> R) -> R {
    let lock = open_space_lock();
    let locked = lock
        .as_ref()
        .is_some_and(|fd| rustix::fs::flock(fd, rustix::fs::FlockOperation::LockExclusive).is_ok());
    let result = step();
    if locked {
        if let Some(fd) = &lock {
            let _ = rustix::fs::flock(fd, rustix::fs::FlockOperation::Unlock);
        }
    }
    result
}

/// Opens (creating it 0600) the machine-wide space lock; only a regular
/// file owned by root is trusted with it.
pub fn open_space_lock() -> Option<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        SPACE_LOCK,
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .ok()?;
    let stat = rustix::fs::fstat(&fd).ok()?;
    let regular =
        rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile;
    (regular && stat.st_uid == 0).then_some(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::os::fd::AsFd;
    use std::time::{Duration, SystemTime};

    #[test]
    fn core_names() {
        assert!(!is_core_name(b"core.crasher.12.1700000000.user.json"));
        assert!(is_core_name(b"core.crasher.12.1700000000"));
        assert!(is_core_name(b"core.crasher.12.1700000000.zst"));
        assert!(!is_core_name(b"core.crasher.12.1700000000.json"));
        assert!(!is_core_name(b".lttng-coredump-tmp-00"));
        assert!(!is_core_name(b"notes"));
    }

    #[test]
    fn stems() {
        assert_eq!(crash_stem(b"core.a.1.2"), Some(&b"core.a.1.2"[..]));
        assert_eq!(crash_stem(b"core.a.1.2.zst"), Some(&b"core.a.1.2"[..]));
        assert_eq!(crash_stem(b"core.a.1.2.json"), Some(&b"core.a.1.2"[..]));
        assert_eq!(
            crash_stem(b"core.a.1.2.3.user.json"),
            Some(&b"core.a.1.2.3"[..])
        );
        assert_eq!(crash_stem(b".lttng-coredump-ledger"), None);
    }

    fn scratch(tag: &str) -> (std::path::PathBuf, File) {
        let dir = std::env::temp_dir().join(format!("handler-space-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fd = File::open(&dir).unwrap();
        (dir, fd)
    }

    /// A crash of `uid`, `age` seconds old: a 64 KiB core and its records.
    fn plant(dir: &std::path::Path, stem: &str, uid: u32, age: u64) {
        let now = SystemTime::now();
        for (name, size) in [
            (stem.to_string(), 64 * 1024),
            (format!("{stem}.json"), 100),
            (format!("{stem}.user.json"), 100),
        ] {
            std::fs::write(dir.join(&name), vec![1u8; size]).unwrap();
            let file = File::options().write(true).open(dir.join(&name)).unwrap();
            file.set_modified(now - Duration::from_secs(age)).unwrap();
            mark_owner(&file, uid).unwrap();
        }
    }

    #[test]
    fn oldest_crashes_go_first_with_their_records() {
        let (dir, dirfd) = scratch("oldest");
        plant(&dir, "core.a.1.1", 1000, 300);
        plant(&dir, "core.b.2.2", 1000, 200);
        plant(&dir, "core.c.3.3", 1000, 100);
        std::fs::write(dir.join("notes"), "x").unwrap();
        let (used, crashes) = survey(dirfd.as_fd()).unwrap();
        assert_eq!(crashes.len(), 3);
        assert_eq!(crashes[0].owner, Some(1000));
        assert!(used >= 3 * 64 * 1024);

        // A directory limit that leaves room for one more core of 64 KiB
        // only after two crashes are deleted.
        let policy = SpacePolicy {
            max_dir_size: used - 64 * 1024,
            min_free: 0,
        };
        let claimant = Claimant {
            uid: Some(1000),
            ..Claimant::default()
        };
        assert!(room(dirfd.as_fd(), policy).unwrap() < 64 * 1024);
        let (room_left, deleted) =
            make_room(dirfd.as_fd(), policy, 64 * 1024, 0, claimant).unwrap();
        assert_eq!(deleted, ["core.a.1.1", "core.b.2.2"]);
        assert!(room_left >= 64 * 1024);
        assert!(dir.join("core.c.3.3").exists());
        for gone in ["core.a.1.1", "core.a.1.1.json", "core.a.1.1.user.json"] {
            assert!(!dir.join(gone).exists(), "{gone}");
        }
        assert!(dir.join("notes").exists());

        // A free-space floor above what the disk has: no room at all, and
        // nothing is deleted for nothing.
        let policy = SpacePolicy {
            max_dir_size: u64::MAX,
            min_free: u64::MAX / 2,
        };
        let (room_left, deleted) = make_room(dirfd.as_fd(), policy, 1, 0, claimant).unwrap();
        assert_eq!(room_left, 0);
        assert!(deleted.is_empty());
        assert!(dir.join("core.c.3.3").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_plan_says_what_goes_and_why_the_rest_stays_deleting_nothing() {
        let (dir, dirfd) = scratch("plan");
        plant(&dir, "core.a.1.1", 1000, 400);
        plant(&dir, "core.b.2.2", 1001, 300);
        plant(&dir, "core.c.3.3", 1000, 200);
        plant(&dir, "core.d.4.4", 1000, 100);
        let (used, _) = survey(dirfd.as_fd()).unwrap();
        // Room only once two crashes' worth is gone.
        let policy = SpacePolicy {
            max_dir_size: used - 2 * 64 * 1024,
            min_free: 0,
        };
        let plan = plan(dirfd.as_fd(), policy).unwrap();
        let fates: Vec<(&str, Fate)> = plan
            .crashes
            .iter()
            .map(|c| (c.name.as_str(), c.fate))
            .collect();
        assert_eq!(
            fates,
            [
                ("core.a.1.1", Fate::Goes),
                ("core.b.2.2", Fate::NewestOfItsUser),
                ("core.c.3.3", Fate::Goes),
                ("core.d.4.4", Fate::NewestOfItsUser),
            ]
        );
        assert!(plan.room >= 1);
        assert!(dir.join("core.a.1.1").exists(), "a plan deletes nothing");
        // make_room deletes what the plan said, and only that.
        let (_, deleted) = make_room(dirfd.as_fd(), policy, 1, 0, Claimant::default()).unwrap();
        assert_eq!(deleted, ["core.a.1.1", "core.c.3.3"]);
        // Within the limits now: everything else stays, said so.
        let again = super::plan(dirfd.as_fd(), policy).unwrap();
        assert!(again
            .crashes
            .iter()
            .all(|c| c.fate == Fate::NewestOfItsUser));
        let roomy = SpacePolicy {
            max_dir_size: u64::MAX,
            min_free: 0,
        };
        plant(&dir, "core.e.0.0", 1000, 500);
        let fates: Vec<Fate> = super::plan(dirfd.as_fd(), roomy)
            .unwrap()
            .crashes
            .iter()
            .map(|c| c.fate)
            .collect();
        assert_eq!(fates[0], Fate::WithinLimits);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn another_users_latest_core_and_the_own_crash_are_never_deleted() {
        let (dir, dirfd) = scratch("others");
        plant(&dir, "core.svc.1.1", 0, 500);
        plant(&dir, "core.svc.2.2", 0, 400);
        plant(&dir, "core.loop.3.3", 1000, 300);
        plant(&dir, "core.loop.4.4", 1000, 200);
        let (used, _) = survey(dirfd.as_fd()).unwrap();
        // Room for one more only when everything deletable goes.
        let policy = SpacePolicy {
            max_dir_size: used,
            min_free: 0,
        };
        let looper = Claimant {
            uid: Some(1000),
            own_stem: Some(b"core.loop.4.4"),
            own_reservation: None,
        };
        let (_, deleted) = make_room(dirfd.as_fd(), policy, 1 << 30, 0, looper).unwrap();
        // Root's older core, and the looper's own older crash; never root's
        // latest core nor the crash being written.
        assert_eq!(deleted, ["core.svc.1.1", "core.loop.3.3"]);
        assert!(dir.join("core.svc.2.2").exists());
        assert!(dir.join("core.loop.4.4").exists());

        // A record that does not fit within the limit makes room the same
        // way, and is refused when nothing may go.
        let (used, _) = survey(dirfd.as_fd()).unwrap();
        let policy = SpacePolicy {
            max_dir_size: used + 1000,
            min_free: 0,
        };
        let (room_left, deleted) =
            make_room_for_record(dirfd.as_fd(), policy, 4096, looper).unwrap();
        assert!(deleted.is_empty());
        assert!(room_left < 4096);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_reservation_is_counted_by_every_measure_but_its_holders_and_a_dead_holders_not_at_all() {
        let (dir, dirfd) = scratch("reserve");
        let (used, _) = survey(dirfd.as_fd()).unwrap();
        let policy = SpacePolicy {
            max_dir_size: used + (1 << 20),
            min_free: 0,
        };
        let before = room(dirfd.as_fd(), policy).unwrap();
        let (seen, held) = reserve(dirfd.as_fd(), policy, 1000, |room| room / 2).unwrap();
        assert_eq!(seen, before);
        let held = held.unwrap();
        assert_eq!(held.bytes, before / 2);
        // Everyone else sees the room taken (the ledger itself now takes a
        // block too)...
        let (used_now, _) = survey(dirfd.as_fd()).unwrap();
        let after = room(dirfd.as_fd(), policy).unwrap();
        assert_eq!(
            after,
            (used + (1 << 20)).saturating_sub(used_now + held.bytes)
        );
        // A second one gets what is left, never the same room.
        let (left, second) = reserve(dirfd.as_fd(), policy, 1000, |room| room).unwrap();
        assert_eq!(left, after);
        assert_eq!(room(dirfd.as_fd(), policy).unwrap(), 0);
        drop(second);
        // ...but its holder, whose own files are counted as they are.
        let own = Claimant {
            own_reservation: Some(held.id),
            ..Claimant::default()
        };
        let (own_room, _) = make_room(dirfd.as_fd(), policy, 1, 0, own).unwrap();
        assert_eq!(own_room, (used + (1 << 20)).saturating_sub(used_now));
        // A holder that is gone (a pid no process has) counts for nothing
        // and is forgotten.
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let dead = gone.id();
        gone.wait().unwrap();
        let ghost = ReservationId {
            pid: dead,
            start: 1,
            seq: 0,
        };
        ledger::add_reservation(dirfd.as_fd(), 1000, ghost, 1 << 30).unwrap();
        assert_eq!(ledger::reserved(dirfd.as_fd(), None), held.bytes);
        drop(held);
        assert_eq!(ledger::reserved(dirfd.as_fd(), None), 0);
        let text = std::fs::read_to_string(dir.join(ledger::LEDGER_NAME)).unwrap();
        assert!(!text.contains("reservation"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
