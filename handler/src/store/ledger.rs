//! The core directory's ledger: what the handlers of the machine let
//! through in that directory lately, so that the limits hold under a storm.
//!
//! One root-only file (`.lttng-coredump-ledger`, 0600, a regular file owned
//! by root in the checked core directory) lists, one JSON object a line,
//! the cores the rate limits admitted in the last minute (time, uid,
//! program) and the crashes that got the handler's own snapshots (time),
//! and the snapshot directories the handler made (see `snapshot_budget`).
//! Every reader takes an exclusive `flock` on the file and keeps it across
//! "count, then reserve": two handlers of one storm can never both see room
//! for the last core. The lock is the file's own (the core directory is
//! writable by root only, and the file 0600, so no one else can open it
//! to hold it).

use rustix::fs::{FlockOperation, Mode, OFlags};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::BorrowedFd;
use std::time::Duration;

/// The ledger's name in the core directory (hidden: never taken for a core
/// or a record).
pub const LEDGER_NAME: &str = ".lttng-coredump-ledger";
/// The window of the per-minute limits.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Longest ledger read: entries only live for the window (snapshot
/// directories until they are pruned), so a ledger this long is damaged.
const MAX_LEDGER: u64 = 16 << 20;
/// Most snapshot directories remembered (with no count, size or age limit
/// configured they would pile up): past it the oldest are forgotten, not
/// deleted.
const MAX_SNAPSHOT_DIRS_NOTED: usize = 10_000;

/// One line of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A core the rate limits let through (saved or being saved).
    Core {
        time: i64,
        uid: u32,
        /// The program's executable path, hex-encoded (any bytes).
        program: String,
    },
    /// A crash that got the handler's own snapshots (configured sessions,
    /// the fallback), and its uid (none in a ledger from before the share
    /// per uid: counted in the total only).
    SnapshotFire {
        time: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<u32>,
    },
    /// A snapshot directory the handler made, for the snapshot budget.
    SnapshotDir {
        time: i64,
        path: String,
        dev: u64,
        ino: u64,
        bytes: u64,
    },
    /// Room reserved in the directory by a live core being taken into it
    /// (pre-copy's staging file, unnamed, and the core to come, unnamed
    /// until complete: neither is in the listing), counted by every
    /// measure of the room (`space`) until its holder releases it, or
    /// until the holder (pid and start time) is gone.
    Reservation {
        time: i64,
        id: ReservationId,
        bytes: u64,
    },
}

/// Who holds a reservation: a process (by pid and start time, so that a
/// reused pid is not taken for it) and its number for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationId {
    pub pid: u32,
    pub start: u64,
    pub seq: u64,
}

impl ReservationId {
    /// A new one for this process.
    pub fn new() -> Option<ReservationId> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let pid = std::process::id();
        Some(ReservationId {
            pid,
            start: start_time(pid)?,
            seq: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Whether its process still runs (a killed holder's reservation
    /// counts no more, and the next save drops it).
    pub fn holder_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// The start time of process `pid` (`/proc/PID/stat`, field 22).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// The bytes the live reservations of the core directory `dir` hold,
/// `except` one (the caller's own). Read without creating the ledger; no
/// ledger, or one that cannot be read, is no reservation (the directory is
/// root's: nobody else could have planted one).
pub fn reserved(dir: BorrowedFd<'_>, except: Option<ReservationId>) -> u64 {
    let Ok(fd) = rustix::fs::openat(
        dir,
        LEDGER_NAME,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    ) else {
        return 0;
    };
    let private = rustix::fs::fstat(&fd).is_ok_and(|stat| {
        rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile
            && stat.st_uid == 0
            && stat.st_mode & 0o077 == 0
    });
    if !private || rustix::fs::flock(&fd, FlockOperation::LockShared).is_err() {
        return 0;
    }
    let mut text = Vec::new();
    if File::from(fd)
        .take(MAX_LEDGER)
        .read_to_end(&mut text)
        .is_err()
    {
        return 0;
    }
    text.split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Entry>(line).ok())
        .filter_map(|entry| match entry {
            Entry::Reservation { id, bytes, .. } if Some(id) != except && id.holder_alive() => {
                Some(bytes)
            }
            _ => None,
        })
        .fold(0u64, u64::saturating_add)
}

/// [`reserved`], read again only when the ledger changed (its inode, size
/// or modification time), for a writer that asks before every write: one
/// `stat` then. A holder gone since the last read is still counted until
/// the ledger changes (on the safe side).
#[derive(Debug, Default)]
pub struct ReservedCache {
    seen: Option<(u64, i64, i64, u64)>,
    bytes: u64,
}

impl ReservedCache {
    pub fn get(&mut self, dir: BorrowedFd<'_>, except: Option<ReservationId>) -> u64 {
        let stamp = rustix::fs::statat(dir, LEDGER_NAME, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .map(|st| (st.st_ino, st.st_size, st.st_mtime, st.st_mtime_nsec));
        match stamp {
            None => {
                self.seen = None;
                self.bytes = 0;
            }
            Some(stamp) if self.seen != Some(stamp) => {
                self.bytes = reserved(dir, except);
                self.seen = Some(stamp);
            }
            Some(_) => {}
        }
        self.bytes
    }
}

/// Adds a reservation of `bytes` held by `id`.
pub fn add_reservation(
    dir: BorrowedFd<'_>,
    now: i64,
    id: ReservationId,
    bytes: u64,
) -> io::Result<()> {
    let mut ledger = Ledger::lock(dir)?;
    ledger.entries.push(Entry::Reservation {
        time: now,
        id,
        bytes,
    });
    ledger.save()
}

/// Removes the reservation `id` (and every one whose holder is gone).
pub fn remove_reservation(dir: BorrowedFd<'_>, id: ReservationId) -> io::Result<()> {
    let mut ledger = Ledger::lock(dir)?;
    ledger.entries.retain(|entry| match entry {
        Entry::Reservation { id: held, .. } => *held != id && held.holder_alive(),
        _ => true,
    });
    ledger.save()
}

/// The ledger, locked: dropped, it is unlocked (closed).
pub struct Ledger {
    file: File,
    pub entries: Vec<Entry>,
}

impl Ledger {
    /// Opens (creating it) and locks the ledger of the core directory
    /// `dir`, and reads it. A damaged line is dropped.
    pub fn lock(dir: BorrowedFd<'_>) -> io::Result<Ledger> {
        let fd = rustix::fs::openat(
            dir,
            LEDGER_NAME,
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::from_raw_mode(0o600),
        )?;
        let stat = rustix::fs::fstat(&fd)?;
        let regular =
            rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile;
        if !regular || stat.st_uid != 0 || stat.st_mode & 0o077 != 0 || stat.st_nlink != 1 {
            return Err(io::Error::other(format!(
                "{LEDGER_NAME} is not a private regular file of root (uid {}, mode {:o}, {} links)",
                stat.st_uid,
                stat.st_mode & 0o7777,
                stat.st_nlink
            )));
        }
        rustix::fs::flock(&fd, FlockOperation::LockExclusive)?;
        let mut file = File::from(fd);
        let mut text = Vec::new();
        (&mut file).take(MAX_LEDGER).read_to_end(&mut text)?;
        let entries = text
            .split(|&b| b == b'\n')
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect();
        Ok(Ledger { file, entries })
    }

    /// Writes the entries back (the lock is kept until the ledger is dropped).
    pub fn save(&mut self) -> io::Result<()> {
        let noted = self
            .entries
            .iter()
            .filter(|e| matches!(e, Entry::SnapshotDir { .. }))
            .count();
        let mut forget = noted.saturating_sub(MAX_SNAPSHOT_DIRS_NOTED);
        // Entries are appended as they come: the first are the oldest.
        self.entries.retain(|entry| {
            if forget > 0 && matches!(entry, Entry::SnapshotDir { .. }) {
                forget -= 1;
                return false;
            }
            true
        });
        let mut text = Vec::new();
        for entry in &self.entries {
            serde_json::to_writer(&mut text, entry).map_err(io::Error::other)?;
            text.push(b'\n');
        }
        self.file.rewind()?;
        self.file.set_len(0)?;
        self.file.write_all(&text)?;
        Ok(())
    }

    /// Drops the per-minute entries older than the window.
    fn forget_before(&mut self, now: i64) {
        let since = now - WINDOW.as_secs() as i64;
        self.entries.retain(|entry| match entry {
            Entry::Core { time, .. } | Entry::SnapshotFire { time, .. } => *time > since,
            Entry::SnapshotDir { .. } => true,
            Entry::Reservation { id, .. } => id.holder_alive(),
        });
    }
}

/// The per-minute limits on cores; 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreLimits {
    pub per_program: u32,
    pub per_user: u32,
}

/// The program a core is counted against, for the rate limit: its
/// executable path (a process may rename itself at will, not its
/// executable), as bytes.
pub fn program_key(exe: &[u8]) -> String {
    exe.iter().map(|b| format!("{b:02x}")).collect()
}

/// Counts the cores admitted in the last minute for this program and this
/// uid and, when both are under their limits, reserves one (in the same
/// locked step). Returns why the core must not be kept, or `None` when it
/// was admitted. `program_shown` names the program in the reason.
pub fn admit_core(
    ledger: &mut Ledger,
    now: i64,
    uid: u32,
    program: &[u8],
    program_shown: &str,
    limits: CoreLimits,
) -> io::Result<Option<String>> {
    ledger.forget_before(now);
    let key = program_key(program);
    let (mut of_program, mut of_user) = (0u32, 0u32);
    for entry in &ledger.entries {
        if let Entry::Core {
            uid: entry_uid,
            program: entry_program,
            ..
        } = entry
        {
            // A program is counted per user: one user's crash loop of a
            // shared program never costs another user their cores.
            of_program += u32::from(*entry_program == key && *entry_uid == uid);
            of_user += u32::from(*entry_uid == uid);
        }
    }
    let reason = if limits.per_program > 0 && of_program >= limits.per_program {
        Some(format!(
            "rate limit: {of_program} cores of {program_shown} saved in the last minute \
             (max_cores_per_minute = {}, counted by executable: {})",
            limits.per_program,
            crate::base::sanitize::for_log(program)
        ))
    } else if limits.per_user > 0 && of_user >= limits.per_user {
        Some(format!(
            "rate limit: {of_user} cores of uid {uid} saved in the last minute \
             (max_cores_per_user_per_minute = {})",
            limits.per_user
        ))
    } else {
        ledger.entries.push(Entry::Core {
            time: now,
            uid,
            program: key,
        });
        None
    };
    ledger.save()?;
    Ok(reason)
}

/// The snapshot budget's limits per minute (0: no limit): in all, and for
/// the crashes of one uid (root's included), within the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotLimits {
    pub per_minute: u32,
    pub per_user: u32,
}

/// Counts the crashes that got the handler's own snapshots in the last
/// minute, in all and of `uid`, and when both are under their limits
/// counts this one (in the same locked step). Returns why this crash gets
/// none, or `None`.
pub fn admit_snapshot_fire(
    ledger: &mut Ledger,
    now: i64,
    uid: u32,
    limits: SnapshotLimits,
) -> io::Result<Option<String>> {
    ledger.forget_before(now);
    let (mut recent, mut of_user) = (0u32, 0u32);
    for entry in &ledger.entries {
        if let Entry::SnapshotFire { uid: entry_uid, .. } = entry {
            recent += 1;
            of_user += u32::from(*entry_uid == Some(uid));
        }
    }
    // A share of the total: with no total (0), no limit at all.
    let reason = if limits.per_minute > 0 && limits.per_user > 0 && of_user >= limits.per_user {
        Some(format!(
            "snapshot budget: {of_user} crashes of uid {uid} got the handler's own snapshots \
             in the last minute (max_snapshots_per_user_per_minute = {}, the share of one uid \
             of max_snapshots_per_minute = {}); this one gets none",
            limits.per_user, limits.per_minute
        ))
    } else if limits.per_minute > 0 && recent >= limits.per_minute {
        Some(format!(
            "snapshot budget: {recent} crashes got the handler's own snapshots (configured \
             sessions, the fallback) in the last minute (max_snapshots_per_minute = {}); this \
             one gets none",
            limits.per_minute
        ))
    } else {
        ledger.entries.push(Entry::SnapshotFire {
            time: now,
            uid: Some(uid),
        });
        None
    };
    ledger.save()?;
    Ok(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn scratch(tag: &str) -> (std::path::PathBuf, File) {
        let dir = std::env::temp_dir().join(format!("handler-ledger-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fd = File::open(&dir).unwrap();
        (dir, fd)
    }

    #[test]
    fn limits_count_by_program_and_by_user_within_the_minute() {
        let (dir, fd) = scratch("limits");
        let limits = CoreLimits {
            per_program: 2,
            per_user: 3,
        };
        let admit = |now, uid, program: &[u8]| {
            let mut ledger = Ledger::lock(fd.as_fd()).unwrap();
            admit_core(&mut ledger, now, uid, program, "p", limits).unwrap()
        };
        assert_eq!(admit(1000, 5, b"/a"), None);
        assert_eq!(admit(1000, 5, b"/a"), None);
        assert!(admit(1001, 5, b"/a")
            .unwrap()
            .contains("max_cores_per_minute"));
        // Another user's crashes of the program are counted apart.
        assert_eq!(admit(1001, 6, b"/a"), None);
        assert_eq!(admit(1002, 5, b"/b"), None);
        assert!(admit(1002, 5, b"/c").unwrap().contains("of uid 5"));
        assert_eq!(admit(1002, 6, b"/c"), None);
        // A minute later, all is forgotten.
        assert_eq!(admit(1061, 5, b"/a"), None);
        let mode = std::fs::symlink_metadata(dir.join(LEDGER_NAME)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_planted_ledger_is_refused() {
        let (dir, fd) = scratch("planted");
        std::os::unix::fs::symlink("/etc/passwd", dir.join(LEDGER_NAME)).unwrap();
        assert!(Ledger::lock(fd.as_fd()).is_err());
        std::fs::remove_file(dir.join(LEDGER_NAME)).unwrap();
        std::fs::write(dir.join(LEDGER_NAME), "").unwrap();
        std::fs::set_permissions(
            dir.join(LEDGER_NAME),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        assert!(Ledger::lock(fd.as_fd()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_snapshot_budget_counts_crashes_per_minute() {
        let (dir, fd) = scratch("snapfires");
        let limits = SnapshotLimits {
            per_minute: 2,
            per_user: 0,
        };
        let fire = |now| {
            let mut ledger = Ledger::lock(fd.as_fd()).unwrap();
            admit_snapshot_fire(&mut ledger, now, 5, limits).unwrap()
        };
        assert_eq!(fire(10), None);
        assert_eq!(fire(11), None);
        assert!(fire(12).unwrap().contains("max_snapshots_per_minute"));
        assert_eq!(fire(71), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn one_uids_crashes_take_at_most_its_share_of_the_snapshot_budget() {
        let (dir, fd) = scratch("snapshare");
        // An entry of a ledger from before the share: counted in the total.
        std::fs::write(
            dir.join(LEDGER_NAME),
            "{\"kind\":\"snapshot_fire\",\"time\":1000}\n",
        )
        .unwrap();
        std::fs::set_permissions(
            dir.join(LEDGER_NAME),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let limits = SnapshotLimits {
            per_minute: 5,
            per_user: 2,
        };
        let fire = |uid| {
            let mut ledger = Ledger::lock(fd.as_fd()).unwrap();
            admit_snapshot_fire(&mut ledger, 1001, uid, limits).unwrap()
        };
        assert_eq!(fire(1000), None);
        assert_eq!(fire(1000), None);
        let refused = fire(1000).unwrap();
        assert!(
            refused.contains("max_snapshots_per_user_per_minute") && refused.contains("uid 1000"),
            "{refused}"
        );
        // Another user's crash, and root's, still get theirs...
        assert_eq!(fire(2000), None);
        assert_eq!(fire(0), None);
        // ...within the total.
        assert!(fire(3000).unwrap().contains("max_snapshots_per_minute = 5"));
        // With no total, no share either.
        let unlimited = SnapshotLimits {
            per_minute: 0,
            per_user: 2,
        };
        let mut ledger = Ledger::lock(fd.as_fd()).unwrap();
        assert_eq!(
            admit_snapshot_fire(&mut ledger, 1001, 1000, unlimited).unwrap(),
            None
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_storm_of_one_uids_crashes_never_takes_more_than_its_share() {
        let (dir, _) = scratch("snapstorm");
        let limits = SnapshotLimits {
            per_minute: 6,
            per_user: 2,
        };
        let admitted: Vec<u32> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..24u32)
                .map(|n| {
                    let dir = &dir;
                    scope.spawn(move || {
                        // Each its own open file, as separate handlers; 20
                        // crashes of uid 7, then one of each of 4 others.
                        let fd = File::open(dir).unwrap();
                        let uid = if n < 20 { 7 } else { n };
                        let mut ledger = Ledger::lock(fd.as_fd()).unwrap();
                        let verdict = admit_snapshot_fire(&mut ledger, 1000, uid, limits).unwrap();
                        verdict.is_none().then_some(uid)
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(admitted.iter().filter(|&&uid| uid == 7).count(), 2);
        assert_eq!(admitted.len(), 6);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
