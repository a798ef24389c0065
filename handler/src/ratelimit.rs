//! Keeping a crash loop from filling the disk: how many cores of the same
//! program (by its file-name component, as cores are named) were saved in
//! the last minute. Past the configured number, the crash still gets its
//! snapshots and its record, but no core file.

use std::os::fd::BorrowedFd;
use std::time::{Duration, SystemTime};

pub const WINDOW: Duration = Duration::from_secs(60);

/// Cores named `core.NAME.*` (regular files, not records) modified within
/// `WINDOW` of `now`.
pub fn recent_cores(dir: BorrowedFd<'_>, name: &str, now: SystemTime) -> std::io::Result<usize> {
    let prefix = format!("core.{name}.");
    let since = now
        .checked_sub(WINDOW)
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let mut count = 0;
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let file_name = entry.file_name().to_bytes();
        if !file_name.starts_with(prefix.as_bytes()) || !crate::space::is_core_name(file_name) {
            continue;
        }
        if let Ok(stat) = rustix::fs::statat(
            dir,
            entry.file_name(),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        ) {
            let regular = rustix::fs::FileType::from_raw_mode(stat.st_mode)
                == rustix::fs::FileType::RegularFile;
            if regular && stat.st_mtime >= since {
                count += 1;
            }
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::os::fd::AsFd;

    #[test]
    fn counts_only_recent_cores_of_that_program() {
        let dir = std::env::temp_dir().join(format!("handler-ratelimit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let now = SystemTime::now();
        for (name, age) in [
            ("core.loop.1.1", 5),
            ("core.loop.2.2", 30),
            ("core.loop.3.3.zst", 10),
            ("core.loop.4.4", 600),
            ("core.loop.1.1.json", 5),
            ("core.loopy.5.5", 5),
            ("core.other.6.6", 5),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, "x").unwrap();
            File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(now - Duration::from_secs(age))
                .unwrap();
        }
        std::os::unix::fs::symlink("/etc/passwd", dir.join("core.loop.7.7")).unwrap();
        let fd = File::open(&dir).unwrap();
        assert_eq!(recent_cores(fd.as_fd(), "loop", now).unwrap(), 3);
        assert_eq!(recent_cores(fd.as_fd(), "other", now).unwrap(), 1);
        assert_eq!(recent_cores(fd.as_fd(), "none", now).unwrap(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
