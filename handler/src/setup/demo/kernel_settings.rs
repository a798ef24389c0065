//! The kernel's `core_pattern` and `core_pipe_limit` for the duration of the
//! demo: saved before anything is changed, and put back exactly once —
//! explicitly, when the guard is dropped (on an error or a panic), or from
//! the signal handler (Ctrl-C, SIGTERM, SIGHUP), whichever comes first.

use crate::kernel::settings::{write_setting, KernelFiles};
use anyhow::anyhow;
use std::sync::{Arc, Mutex, PoisonError};

/// What was in place before the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub core_pattern: String,
    pub core_pipe_limit: String,
}

#[derive(Debug)]
struct Shared {
    files: KernelFiles,
    /// `None` once restored: restoring is done once, by whoever comes first.
    saved: Option<Saved>,
    /// Whether the demo changed anything yet (nothing to put back before).
    changed: bool,
}

/// Owns the kernel settings while the demo runs; restores them when dropped.
#[derive(Debug)]
pub struct KernelSettingsGuard {
    shared: Arc<Mutex<Shared>>,
}

/// A handle that can restore the settings from another thread (the signal
/// handler's).
#[derive(Debug, Clone)]
pub struct Restorer {
    shared: Arc<Mutex<Shared>>,
}

impl KernelSettingsGuard {
    /// Reads and keeps the current settings; changes nothing.
    pub fn save(files: KernelFiles) -> anyhow::Result<KernelSettingsGuard> {
        let saved = Saved {
            core_pattern: files.read_pattern()?,
            core_pipe_limit: files.read_pipe_limit()?,
        };
        Ok(KernelSettingsGuard {
            shared: Arc::new(Mutex::new(Shared {
                files,
                saved: Some(saved),
                changed: false,
            })),
        })
    }

    pub fn saved(&self) -> Option<Saved> {
        lock(&self.shared).saved.clone()
    }

    pub fn restorer(&self) -> Restorer {
        Restorer {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Writes `line` to core_pattern, and `pipe_limit` to core_pipe_limit
    /// when it is 0 (a non-zero limit makes the kernel keep the crashed
    /// process, and its trace buffers, until the handler is done).
    pub fn install(&self, line: &str, pipe_limit: u32) -> anyhow::Result<()> {
        let mut shared = lock(&self.shared);
        let Some(saved) = shared.saved.clone() else {
            return Err(anyhow!(
                "interrupted: the kernel settings were already restored"
            ));
        };
        shared.changed = true;
        if saved.core_pipe_limit.trim() == "0" {
            write_setting(&shared.files.core_pipe_limit, &pipe_limit.to_string())?;
        }
        write_setting(&shared.files.core_pattern, line)?;
        let written = shared.files.read_pattern()?;
        if written != line {
            return Err(anyhow!(
                "the kernel kept core_pattern {written:?} instead of {line:?}"
            ));
        }
        Ok(())
    }

    /// Puts the saved settings back now; see [`Restorer::restore`].
    pub fn restore(&self) -> anyhow::Result<Option<Saved>> {
        self.restorer().restore()
    }
}

impl Restorer {
    /// Puts the saved settings back and checks that the kernel has them.
    /// `Ok(None)` when they were already restored (or never changed).
    pub fn restore(&self) -> anyhow::Result<Option<Saved>> {
        let mut shared = lock(&self.shared);
        let Some(saved) = shared.saved.take() else {
            return Ok(None);
        };
        if !shared.changed {
            return Ok(None);
        }
        write_setting(&shared.files.core_pattern, &saved.core_pattern)?;
        write_setting(&shared.files.core_pipe_limit, &saved.core_pipe_limit)?;
        let pattern = shared.files.read_pattern()?;
        let pipe_limit = shared.files.read_pipe_limit()?;
        if pattern != saved.core_pattern || pipe_limit != saved.core_pipe_limit {
            return Err(anyhow!(
                "restoring the kernel settings: core_pattern is {pattern:?} and core_pipe_limit \
                 {pipe_limit} instead of {:?} and {}",
                saved.core_pattern,
                saved.core_pipe_limit
            ));
        }
        Ok(Some(saved))
    }
}

impl Drop for KernelSettingsGuard {
    fn drop(&mut self) {
        match self.restore() {
            Ok(Some(saved)) => println!("{}", restored_message(&saved)),
            Ok(None) => {}
            Err(err) => eprintln!(
                "lttng-coredump demo: {err:#}\n  put it back by hand: {}",
                lock(&self.shared)
                    .saved
                    .as_ref()
                    .map(|s| format!("core_pattern {:?}", s.core_pattern))
                    .unwrap_or_default()
            ),
        }
    }
}

/// What a person is told once the settings are back.
pub fn restored_message(saved: &Saved) -> String {
    format!(
        "core_pattern restored to {:?}, core_pipe_limit to {}",
        saved.core_pattern, saved.core_pipe_limit
    )
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    // A panic while holding it leaves plain data behind: still usable.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::settings::tests::fake_kernel;

    #[test]
    fn settings_come_back_exactly_once_whoever_restores_them() {
        let (dir, files) = fake_kernel("|/usr/lib/x %P  two spaces", "0");
        let guard = KernelSettingsGuard::save(files.clone()).unwrap();
        let restorer = guard.restorer();
        guard.install("|/h handle P=%P", 16).unwrap();
        assert_eq!(files.read_pattern().unwrap(), "|/h handle P=%P");
        assert_eq!(files.read_pipe_limit().unwrap(), "16");
        let restored = std::thread::spawn(move || restorer.restore().unwrap())
            .join()
            .unwrap();
        assert_eq!(
            restored.map(|s| s.core_pattern).as_deref(),
            Some("|/usr/lib/x %P  two spaces")
        );
        assert_eq!(files.read_pattern().unwrap(), "|/usr/lib/x %P  two spaces");
        assert_eq!(files.read_pipe_limit().unwrap(), "0");
        // Someone changes it afterwards: the guard does not write again.
        std::fs::write(&files.core_pattern, "later\n").unwrap();
        assert_eq!(guard.restore().unwrap(), None);
        assert!(guard.install("|/h again", 16).is_err());
        drop(guard);
        assert_eq!(files.read_pattern().unwrap(), "later");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dropping_the_guard_restores_and_a_non_zero_limit_is_left_alone() {
        let (dir, files) = fake_kernel("core", "4");
        {
            let guard = KernelSettingsGuard::save(files.clone()).unwrap();
            guard.install("|/h handle P=%P", 16).unwrap();
            assert_eq!(files.read_pipe_limit().unwrap(), "4");
        }
        assert_eq!(files.read_pattern().unwrap(), "core");
        assert_eq!(files.read_pipe_limit().unwrap(), "4");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
