//! The handler's `demo` command run for a test, and what it printed read
//! back: every demo test runs it and reads its output the same way.

use crate::crasher::crasher_path;
use crate::process::run_bounded;
use crate::temp::TempDir;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A finished, successful run of `lttng-coredump demo`.
pub struct DemoRun {
    /// The directory the demo was given (`--dir`); removed when dropped.
    pub dir: TempDir,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `lttng-coredump demo` (`binary`, the one cargo built) in a fresh
/// directory named after `prefix`, and asserts that it succeeded.
pub fn run_demo(binary: &Path, prefix: &str) -> DemoRun {
    let dir = TempDir::new(prefix);
    // The demo refuses a directory that others than root can write,
    // whatever the umask made of it.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let output = run_bounded(
        Command::new(binary)
            // The traced program, which the demo finds beside an installed
            // binary; cargo's target directory has it elsewhere.
            .env("LTTNG_COREDUMP_DEMO_PROGRAM", crasher_path())
            .arg("demo")
            .arg("--dir")
            .arg(dir.path()),
        Duration::from_secs(300),
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "the demo failed: {:?}\n{stdout}\n{stderr}",
        output.status
    );
    DemoRun {
        dir,
        stdout,
        stderr,
    }
}

impl DemoRun {
    /// The text after `label` on the first output line that starts with it.
    pub fn field(&self, label: &str) -> &str {
        self.stdout
            .lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(label))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {label:?} line in the demo's output:\n{}", self.stdout))
    }

    /// The name of the tracing session the demo says it used.
    pub fn session(&self) -> String {
        self.field("session")
            .split('"')
            .nth(1)
            .expect("a quoted session name")
            .to_string()
    }

    /// The core the demo names, which must be in its directory's `core/`.
    pub fn core(&self) -> PathBuf {
        self.kept("core:", "core")
    }

    /// The snapshot the demo names, which must be in its directory's
    /// `snapshot/`.
    pub fn snapshot(&self) -> PathBuf {
        self.kept("snapshot:", "snapshot")
    }

    fn kept(&self, label: &str, subdir: &str) -> PathBuf {
        let path = PathBuf::from(self.field(label));
        assert_eq!(
            path.parent().unwrap(),
            self.dir.path().join(subdir),
            "{}",
            self.stdout
        );
        path
    }

    /// Asserts that the scratch directory the demo installed its handler
    /// from (the one its core_pattern line, printed after `now: |`, ran)
    /// is gone.
    pub fn assert_no_scratch_left(&self) {
        let scratch = self
            .field("now: |")
            .split(' ')
            .next()
            .map(|handler| Path::new(handler).parent().unwrap().to_path_buf())
            .unwrap();
        assert!(!scratch.exists(), "{} is left behind", scratch.display());
    }
}
