//! The age limit of retention (`max_age`): cores and crash records older
//! than it are deleted, by their modification time (when the handler wrote
//! them). Only the handler's own names (`core.*`) in the core directory,
//! regular files, never followed links.

use rustix::fs::{AtFlags, FileType};
use std::os::fd::BorrowedFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Deletes what is older than `max_age` at `now`; returns the names deleted.
pub fn expire(
    dir: BorrowedFd<'_>,
    max_age: Duration,
    now: SystemTime,
) -> std::io::Result<Vec<String>> {
    expire_or_list(dir, max_age, now, true)
}

/// What [`expire`] would delete, deleting nothing (`vacuum --dry-run`).
pub fn expired(
    dir: BorrowedFd<'_>,
    max_age: Duration,
    now: SystemTime,
) -> std::io::Result<Vec<String>> {
    expire_or_list(dir, max_age, now, false)
}

fn expire_or_list(
    dir: BorrowedFd<'_>,
    max_age: Duration,
    now: SystemTime,
    delete: bool,
) -> std::io::Result<Vec<String>> {
    let Some(limit) = now.checked_sub(max_age) else {
        return Ok(Vec::new());
    };
    let limit = limit
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut deleted = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_bytes().starts_with(b"core.") {
            continue;
        }
        let Ok(stat) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            continue;
        }
        if stat.st_mtime < limit
            && (!delete || rustix::fs::unlinkat(dir, name, AtFlags::empty()).is_ok())
        {
            deleted.push(name.to_string_lossy().into_owned());
        }
    }
    deleted.sort();
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::os::fd::AsFd;

    #[test]
    fn old_cores_and_records_go_the_rest_stays() {
        let dir = std::env::temp_dir().join(format!("handler-retention-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let now = SystemTime::now();
        for (name, age_days) in [
            ("core.old.1.1", 40),
            ("core.old.1.1.json", 40),
            ("core.new.2.2.zst", 1),
            ("core.new.2.2.json", 1),
            ("notes", 400),
        ] {
            std::fs::write(dir.join(name), "x").unwrap();
            File::options()
                .write(true)
                .open(dir.join(name))
                .unwrap()
                .set_modified(now - Duration::from_secs(age_days * 86_400))
                .unwrap();
        }
        std::os::unix::fs::symlink("/etc/passwd", dir.join("core.link")).unwrap();
        let dirfd = File::open(&dir).unwrap();
        let deleted = expire(dirfd.as_fd(), Duration::from_secs(30 * 86_400), now).unwrap();
        assert_eq!(deleted, ["core.old.1.1", "core.old.1.1.json"]);
        for kept in [
            "core.new.2.2.zst",
            "core.new.2.2.json",
            "notes",
            "core.link",
        ] {
            assert!(std::fs::symlink_metadata(dir.join(kept)).is_ok(), "{kept}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
