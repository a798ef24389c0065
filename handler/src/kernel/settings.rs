//! The kernel's crash settings as files: `core_pattern` and
//! `core_pipe_limit` in a `/proc/sys/kernel`-like directory (a path, so
//! that tests and packagers can point elsewhere), read and written whole,
//! what the running kernel supports (from its release), and when a
//! `core_pipe_limit` is too low.

use anyhow::Context as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub const DEFAULT_PROC_SYS_KERNEL: &str = "/proc/sys/kernel";
/// Handlers the kernel may run at once (and, being non-zero, what makes it
/// keep `/proc/PID` of the crashing process until the handler exits).
pub const DEFAULT_PIPE_LIMIT: u32 = 64;

/// Where the kernel's settings live.
#[derive(Debug, Clone)]
pub struct KernelFiles {
    pub core_pattern: PathBuf,
    pub core_pipe_limit: PathBuf,
}

impl KernelFiles {
    /// The files in a `/proc/sys/kernel`-like directory.
    pub fn under(dir: &Path) -> KernelFiles {
        KernelFiles {
            core_pattern: dir.join("core_pattern"),
            core_pipe_limit: dir.join("core_pipe_limit"),
        }
    }

    pub fn read_pattern(&self) -> anyhow::Result<String> {
        read_setting(&self.core_pattern)
    }

    pub fn read_pipe_limit(&self) -> anyhow::Result<String> {
        read_setting(&self.core_pipe_limit)
    }
}

fn read_setting(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.strip_suffix('\n').unwrap_or(&text).to_string())
}

/// Writes one kernel setting (`core_pattern`, `core_pipe_limit`).
pub fn write_setting(path: &Path, value: &str) -> anyhow::Result<()> {
    // The kernel stops at the newline; it also lets an empty value through.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    file.write_all(format!("{value}\n").as_bytes())
        .with_context(|| format!("cannot write {value:?} to {}", path.display()))
}

/// What the running kernel supports, from its release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelFeatures {
    /// `%F`, a pidfd of the crashing process (Linux 6.16).
    pub pidfd: bool,
    /// `%d`, the dump mode (Linux 3.7).
    pub dump_mode: bool,
}

impl KernelFeatures {
    /// From a release string such as `6.18.44-fc`.
    pub fn from_release(release: &str) -> KernelFeatures {
        let mut numbers = release
            .split(|c: char| !c.is_ascii_digit())
            .filter(|part| !part.is_empty())
            .map(|part| part.parse::<u32>().unwrap_or(0));
        let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
        KernelFeatures {
            pidfd: version >= (6, 16),
            dump_mode: version >= (3, 7),
        }
    }

    pub fn running() -> KernelFeatures {
        KernelFeatures::from_release(&rustix::system::uname().release().to_string_lossy())
    }
}

/// Below this many crashes handled at once, `status` warns: the kernel
/// skips the dump of every crash past the limit (the core is lost).
pub const LOW_PIPE_LIMIT: u32 = 8;

/// Why a core_pipe_limit is too low, when it is.
pub fn pipe_limit_warning(limit: &str) -> Option<String> {
    match limit.trim().parse::<u32>() {
        Ok(0) => Some(
            "core_pipe_limit is 0: the kernel does not wait for the handler before it reaps the \
             crashed process, so its /proc details may be gone (install sets 64)"
                .into(),
        ),
        Ok(limit) if limit < LOW_PIPE_LIMIT => Some(format!(
            "core_pipe_limit is {limit}: past {limit} crashes at once the kernel skips the dump \
             and the core is lost (install --pipe-limit {DEFAULT_PIPE_LIMIT})"
        )),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A kernel with every feature the handler asks for.
    pub(crate) const NEW: KernelFeatures = KernelFeatures {
        pidfd: true,
        dump_mode: true,
    };

    #[test]
    fn kernel_features_from_release() {
        assert_eq!(KernelFeatures::from_release("6.18.44-fc-v769"), NEW);
        assert_eq!(
            KernelFeatures::from_release("6.15.0"),
            KernelFeatures {
                pidfd: false,
                dump_mode: true
            }
        );
        assert_eq!(
            KernelFeatures::from_release("3.2.0"),
            KernelFeatures {
                pidfd: false,
                dump_mode: false
            }
        );
        assert_eq!(KernelFeatures::from_release("7.0"), NEW);
    }

    /// A stand-in for /proc/sys/kernel: plain files, as the logic only reads
    /// and writes them (the real files are exercised by the system tests).
    /// One directory per test thread; the demo's tests use it too.
    pub(crate) fn fake_kernel(pattern: &str, limit: &str) -> (PathBuf, KernelFiles) {
        let dir = std::env::temp_dir().join(format!(
            "handler-install-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("core_pattern"), format!("{pattern}\n")).unwrap();
        std::fs::write(dir.join("core_pipe_limit"), format!("{limit}\n")).unwrap();
        (dir.clone(), KernelFiles::under(&dir))
    }

    #[test]
    fn low_pipe_limits_are_warned_about() {
        assert!(pipe_limit_warning("64").is_none());
        assert!(pipe_limit_warning("2").unwrap().contains("lost"));
        assert!(pipe_limit_warning("0").unwrap().contains("/proc"));
    }
}
