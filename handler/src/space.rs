//! How much a new core may still store in the core directory, given the
//! free space to keep on its filesystem and the maximum total size of the
//! directory; makes room by deleting the oldest cores first (their crash
//! records, which are small and say where the trace is, are kept).

use rustix::fs::{AtFlags, FileType};
use std::ffi::CString;
use std::os::fd::BorrowedFd;

/// Always left free beyond the configured floor, so the crash record can
/// still be written after a core used all the room it was given.
pub const RECORD_RESERVE: u64 = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpacePolicy {
    pub max_dir_size: u64,
    pub min_free: u64,
}

/// A core file in the directory, as found when making room.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredCore {
    name: CString,
    modified: (i64, i64),
    bytes: u64,
}

/// Whether a directory entry is a core this handler wrote (its records end
/// in `.json`; temporary files start with a dot).
pub fn is_core_name(name: &[u8]) -> bool {
    name.starts_with(b"core.") && !name.ends_with(b".json")
}

/// Bytes the directory's regular files take on disk, and its cores.
fn survey(dir: BorrowedFd<'_>) -> std::io::Result<(u64, Vec<StoredCore>)> {
    let mut total = 0;
    let mut cores = Vec::new();
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
        if is_core_name(name.to_bytes()) {
            cores.push(StoredCore {
                name: name.to_owned(),
                modified: (stat.st_mtime as i64, stat.st_mtime_nsec as i64),
                bytes,
            });
        }
    }
    cores.sort_by_key(|core| core.modified);
    Ok((total, cores))
}

/// Bytes that may still be stored now, without deleting anything.
pub fn room(dir: BorrowedFd<'_>, policy: SpacePolicy) -> std::io::Result<u64> {
    let (used, _) = survey(dir)?;
    Ok(room_for(free_bytes(dir)?, used, policy))
}

/// Bytes that may be stored before the free-space floor (and the record's
/// reserve) is reached, whatever the directory size limit says.
pub fn room_above_floor(dir: BorrowedFd<'_>, policy: SpacePolicy) -> std::io::Result<u64> {
    Ok(free_bytes(dir)?.saturating_sub(policy.min_free.saturating_add(RECORD_RESERVE)))
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

/// Bytes that may be stored, after deleting the oldest cores until `wanted`
/// bytes fit or no core is left. `unlisted` counts bytes already written
/// to files not yet in the directory's listing (the unnamed core being
/// written). Nothing is deleted when deleting every core would still leave
/// no room at all (the disk is full of something else). Returns the room
/// and the names deleted.
pub fn make_room(
    dir: BorrowedFd<'_>,
    policy: SpacePolicy,
    wanted: u64,
    unlisted: u64,
) -> std::io::Result<(u64, Vec<String>)> {
    let (listed, cores) = survey(dir)?;
    let used = listed.saturating_add(unlisted);
    let free = free_bytes(dir)?;
    let mut room = room_for(free, used, policy);
    let mut deleted = Vec::new();
    if room >= wanted {
        return Ok((room, deleted));
    }
    let all_cores: u64 = cores.iter().map(|core| core.bytes).sum();
    if room_for(free + all_cores, used - all_cores.min(used), policy) == 0 {
        return Ok((room, deleted));
    }
    let mut freed = 0u64;
    for core in cores {
        if room >= wanted {
            break;
        }
        if rustix::fs::unlinkat(dir, core.name.as_c_str(), AtFlags::empty()).is_ok() {
            freed += core.bytes;
            deleted.push(core.name.to_string_lossy().into_owned());
            // Space freed by an unlink may show in statfs only later: count it.
            room = room_for(free + freed, used.saturating_sub(freed), policy);
        }
    }
    Ok((room, deleted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::os::fd::AsFd;
    use std::time::{Duration, SystemTime};

    #[test]
    fn core_names() {
        assert!(is_core_name(b"core.crasher.12.1700000000"));
        assert!(is_core_name(b"core.crasher.12.1700000000.zst"));
        assert!(!is_core_name(b"core.crasher.12.1700000000.json"));
        assert!(!is_core_name(b".lttng-coredump-tmp-00"));
        assert!(!is_core_name(b"notes"));
    }

    #[test]
    fn oldest_cores_go_first_and_records_stay() {
        let dir = std::env::temp_dir().join(format!("handler-space-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let now = SystemTime::now();
        for (name, age) in [
            ("core.a.1.1", 300),
            ("core.b.2.2", 200),
            ("core.c.3.3", 100),
        ] {
            std::fs::write(dir.join(name), vec![1u8; 64 * 1024]).unwrap();
            File::options()
                .write(true)
                .open(dir.join(name))
                .unwrap()
                .set_modified(now - Duration::from_secs(age))
                .unwrap();
            std::fs::write(dir.join(format!("{name}.json")), "{}").unwrap();
        }
        let dirfd = File::open(&dir).unwrap();
        let (used, cores) = survey(dirfd.as_fd()).unwrap();
        assert_eq!(cores.len(), 3);
        assert!(used >= 3 * 64 * 1024);

        // A directory limit that leaves room for one more core of 64 KiB
        // only after two are deleted.
        let policy = SpacePolicy {
            max_dir_size: used - 64 * 1024,
            min_free: 0,
        };
        assert!(room(dirfd.as_fd(), policy).unwrap() < 64 * 1024);
        let (room_left, deleted) = make_room(dirfd.as_fd(), policy, 64 * 1024, 0).unwrap();
        assert_eq!(deleted, ["core.a.1.1", "core.b.2.2"]);
        assert!(room_left >= 64 * 1024);
        assert!(dir.join("core.c.3.3").exists());
        assert!(dir.join("core.a.1.1.json").exists());

        // A free-space floor above what the disk has: no room at all, and
        // no core is deleted for nothing.
        let policy = SpacePolicy {
            max_dir_size: u64::MAX,
            min_free: u64::MAX / 2,
        };
        let (room_left, deleted) = make_room(dirfd.as_fd(), policy, 1, 0).unwrap();
        assert_eq!(room_left, 0);
        assert!(deleted.is_empty());
        assert!(dir.join("core.c.3.3").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
