//! Machine-wide locks (`flock` on files under /run) that serialize what
//! test processes share: cargo runs each test file as its own process, and
//! several worktrees may run their suites at once.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

/// Where the locks (and the short copies of the handler) live.
pub const LOCK_DIR: &str = "/run/lttng-coredump-tests";

/// An exclusive `flock` on a file under /run, held until dropped; serializes
/// work across test processes (cargo runs each test file as its own process).
pub struct FileLock {
    // Held only for its open descriptor: closing it releases the flock.
    _held: File,
}

impl FileLock {
    /// Blocks until the named lock is ours.
    pub fn acquire(name: &str) -> FileLock {
        FileLock::lock(name, libc::LOCK_EX).expect("a blocking flock is always taken")
    }

    /// Blocks until the named lock is ours, shared with other holders of
    /// the shared lock.
    pub fn acquire_shared(name: &str) -> FileLock {
        FileLock::lock(name, libc::LOCK_SH).expect("a blocking flock is always taken")
    }

    /// The named lock if it is free now, without waiting.
    pub fn try_acquire(name: &str) -> Option<FileLock> {
        FileLock::lock(name, libc::LOCK_EX | libc::LOCK_NB)
    }

    /// `None` only for a non-blocking `operation` on a lock held elsewhere.
    fn lock(name: &str, operation: libc::c_int) -> Option<FileLock> {
        fs::create_dir_all(LOCK_DIR).expect("creating /run/lttng-coredump-tests");
        let path = Path::new(LOCK_DIR).join(format!("{name}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("opening lock {}: {e}", path.display()));
        // SAFETY: flock on a file descriptor we own, kept open as long as the
        // returned FileLock lives.
        let ret = unsafe { libc::flock(file.as_raw_fd(), operation) };
        if ret != 0 {
            let err = std::io::Error::last_os_error();
            if operation & libc::LOCK_NB != 0 && err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return None;
            }
            panic!("flock {}: {err}", path.display());
        }
        Some(FileLock { _held: file })
    }
}

/// Serializes the tests that register OnAnyCoreDump triggers in the root
/// session daemon or fire them there: a fire runs every such trigger, so a
/// test's stop trigger would otherwise stop another test's session. Take it
/// before anything else a test locks, except [`CorePatternGuard`], which
/// takes it itself.
pub fn root_triggers_lock() -> FileLock {
    FileLock::acquire("root-triggers")
}
