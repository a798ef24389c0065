//! A guard that owns the kernel's `core_pattern` and `core_pipe_limit` for
//! one test and always gives them back (and the FUSE request bound, which
//! `install --persist` sets).

use crate::lock::{root_triggers_lock, FileLock};
use std::fs::{self, OpenOptions};
use std::io::Write;

const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";
const CORE_PIPE_LIMIT: &str = "/proc/sys/kernel/core_pipe_limit";
/// `install --persist` sets it when it is 0 (Linux 6.14+, with the fuse
/// module); a test that installs must not leave it changed.
pub const FUSE_TIMEOUT: &str = "/proc/sys/fs/fuse/max_request_timeout";

/// Owns the kernel's `core_pattern` (and `core_pipe_limit`) for one test:
/// takes a machine-wide lock so such tests never run concurrently, saves
/// both values, and restores them when dropped, including when the test
/// panics.
pub struct CorePatternGuard {
    saved_pattern: String,
    saved_pipe_limit: String,
    /// `None` where the kernel has no such setting.
    saved_fuse_timeout: Option<String>,
    _lock: FileLock,
    // A crash under an installed handler fires the root daemon's
    // OnAnyCoreDump triggers, so these tests also own those.
    _root_triggers: FileLock,
}

impl CorePatternGuard {
    /// Waits for the core_pattern lock and saves the current values.
    pub fn acquire() -> CorePatternGuard {
        let lock = FileLock::acquire("core-pattern");
        // Always after "core-pattern": one order, no deadlock.
        let root_triggers = root_triggers_lock();
        CorePatternGuard::save(lock, root_triggers)
    }

    /// The guard if its locks are free now, without waiting.
    pub fn try_acquire() -> Option<CorePatternGuard> {
        let lock = FileLock::try_acquire("core-pattern")?;
        let root_triggers = FileLock::try_acquire("root-triggers")?;
        Some(CorePatternGuard::save(lock, root_triggers))
    }

    fn save(lock: FileLock, root_triggers: FileLock) -> CorePatternGuard {
        let saved_pattern = read_sysctl(CORE_PATTERN);
        let saved_pipe_limit = read_sysctl(CORE_PIPE_LIMIT);
        let saved_fuse_timeout = fs::read_to_string(FUSE_TIMEOUT)
            .ok()
            .map(|v| v.trim().to_string());
        CorePatternGuard {
            saved_pattern,
            saved_pipe_limit,
            saved_fuse_timeout,
            _lock: lock,
            _root_triggers: root_triggers,
        }
    }

    /// Writes `pattern` to core_pattern.
    pub fn set(&self, pattern: &str) {
        assert!(
            pattern.len() < 128,
            "core_pattern {pattern:?} is over the kernel's 127 bytes"
        );
        write_sysctl(CORE_PATTERN, pattern);
        assert_eq!(
            read_sysctl(CORE_PATTERN),
            pattern,
            "the kernel did not take core_pattern"
        );
    }

    /// Writes core_pipe_limit.
    pub fn set_pipe_limit(&self, limit: u32) {
        write_sysctl(CORE_PIPE_LIMIT, &limit.to_string());
    }

    /// What a boot does to core_pattern and core_pipe_limit: the kernel
    /// starts from its defaults and systemd-sysctl (or procps) applies the
    /// sysctl.d files in order (`sysctl --system`, limited to these two
    /// settings so that nothing else of the machine changes).
    pub fn simulate_boot(&self) {
        self.set("core");
        self.set_pipe_limit(0);
        let output = crate::process::run_bounded(
            std::process::Command::new("sysctl").args([
                "--system",
                "--pattern",
                "^kernel\\.core_p",
            ]),
            std::time::Duration::from_secs(60),
        );
        assert!(
            output.status.success(),
            "sysctl --system: {}",
            crate::process::output_text(&output)
        );
    }

    /// The core_pattern that was in force before this guard.
    pub fn saved_pattern(&self) -> &str {
        &self.saved_pattern
    }
}

impl Drop for CorePatternGuard {
    fn drop(&mut self) {
        write_sysctl(CORE_PATTERN, &self.saved_pattern);
        write_sysctl(CORE_PIPE_LIMIT, &self.saved_pipe_limit);
        if let Some(value) = &self.saved_fuse_timeout {
            let _ = fs::write(FUSE_TIMEOUT, value);
        }
    }
}

/// The kernel's core_pattern now, without its newline.
pub fn kernel_core_pattern() -> String {
    read_sysctl(CORE_PATTERN)
}

/// The kernel's core_pipe_limit now, without its newline.
pub fn kernel_pipe_limit() -> String {
    read_sysctl(CORE_PIPE_LIMIT)
}

fn read_sysctl(path: &str) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {path}: {e}"))
        .trim_end_matches('\n')
        .to_owned()
}

fn write_sysctl(path: &str, value: &str) {
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {path}: {e}"));
    f.write_all(value.as_bytes())
        .unwrap_or_else(|e| panic!("writing {value:?} to {path}: {e}"));
}
