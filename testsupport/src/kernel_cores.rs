//! Cores written by the kernel itself, for tests that need the core of a
//! real crash without the handler (the crash report's tests): the
//! core_pattern guard points the kernel at a directory of the test's own
//! for as long as the test crashes programs, then gives core_pattern back.

use crate::core_pattern::CorePatternGuard;
use crate::temp::TempDir;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A directory the kernel writes cores into while this holds core_pattern.
pub struct KernelCores {
    guard: Option<CorePatternGuard>,
    dir: TempDir,
}

/// One crash and the core the kernel wrote for it.
#[derive(Debug, Clone)]
pub struct Crashed {
    pub pid: u32,
    pub signal: i32,
    pub core: PathBuf,
    pub stderr: String,
}

impl KernelCores {
    /// Takes core_pattern (waiting for other tests that own it) and points
    /// it at a new directory every user may write cores into (mode 1777).
    pub fn new(prefix: &str) -> KernelCores {
        let dir = TempDir::new(prefix);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777))
            .expect("chmod 1777 the core directory");
        let guard = CorePatternGuard::acquire();
        guard.set(&format!("{}/core.%p", dir.path().display()));
        KernelCores {
            guard: Some(guard),
            dir,
        }
    }

    /// The directory the cores are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `command` (a program that crashes) with RLIMIT_CORE raised,
    /// waits for its crash (at most two minutes) and returns its core.
    /// Panics when it does not die of a signal or leaves no core.
    pub fn crash(&self, command: &Command) -> Crashed {
        assert!(self.guard.is_some(), "core_pattern was already given back");
        let (pid, status, stderr) = crash_with_cores(command);
        let signal = status.signal().expect("crash_with_cores checked it");
        assert!(
            status.core_dumped(),
            "{command:?} died of signal {signal} without a core: {stderr}"
        );
        let core = self.dir.path().join(format!("core.{pid}"));
        assert!(core.is_file(), "no core at {}", core.display());
        Crashed {
            pid,
            signal,
            core,
            stderr,
        }
    }

    /// Gives core_pattern back (the cores stay until this is dropped).
    pub fn release_core_pattern(&mut self) {
        self.guard = None;
    }
}

/// Runs `command` (a program that crashes) with RLIMIT_CORE raised to
/// unlimited (`prlimit`: same pid), waits for its end (at most two
/// minutes), and returns its pid, wait status and standard error. Panics
/// when it does not die of a signal. Whatever core_pattern is in effect
/// gets its core.
pub fn crash_with_cores(command: &Command) -> (u32, std::process::ExitStatus, String) {
    let mut wrapped = Command::new("prlimit");
    wrapped
        .arg("--core=unlimited:unlimited")
        .arg("--")
        .arg(command.get_program())
        .args(command.get_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    let mut child = wrapped
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{command:?} did not crash in time"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        use std::io::Read;
        let _ = err.read_to_string(&mut stderr);
    }
    if status.signal().is_none() {
        panic!("{command:?} did not crash: {status:?}, {stderr}");
    }
    (pid, status, stderr)
}
