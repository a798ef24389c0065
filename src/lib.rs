//! Support shared by the system-level tests in `tests/`: a real root session
//! daemon, unique names, temporary directories, the C fixtures built by
//! `build.rs`, babeltrace2 and the lttng CLI (for inspection only), the
//! handler binary, test users, and a guard that owns the kernel's
//! `core_pattern` for the duration of a test.
//!
//! Nothing here skips: when something a test needs is missing, the support
//! panics with what to install, so the test fails.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The root session daemon's client socket.
pub use lttng_ctl::daemon::ROOT_CLIENT_SOCKET as ROOT_SESSIOND_SOCKET;
const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";
const CORE_PIPE_LIMIT: &str = "/proc/sys/kernel/core_pipe_limit";
const LOCK_DIR: &str = "/run/lttng-coredump-tests";

/// An exclusive `flock` on a file under /run, held until dropped; serializes
/// work across test processes (cargo runs each test file as its own process).
pub struct FileLock {
    // Held only for its open descriptor: closing it releases the flock.
    _held: File,
}

impl FileLock {
    /// Blocks until the named lock is ours.
    pub fn acquire(name: &str) -> FileLock {
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
        let ret = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(
            ret,
            0,
            "flock {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        FileLock { _held: file }
    }
}

/// True when the root session daemon answers on its client socket.
pub fn root_sessiond_alive() -> bool {
    UnixStream::connect(ROOT_SESSIOND_SOCKET).is_ok()
}

/// Makes sure a root user-space session daemon runs, starting one
/// (`lttng-sessiond --daemonize --no-kernel`) when none does. Panics when
/// it cannot, so that tests needing it fail instead of skipping.
pub fn ensure_sessiond() {
    if root_sessiond_alive() {
        return;
    }
    let _lock = FileLock::acquire("sessiond-start");
    if root_sessiond_alive() {
        return;
    }
    let status = Command::new("lttng-sessiond")
        .args(["--daemonize", "--no-kernel"])
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run lttng-sessiond (apt-get install -y lttng-tools): {e}")
        });
    assert!(
        status.success(),
        "lttng-sessiond --daemonize --no-kernel failed: {status}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !root_sessiond_alive() {
        assert!(
            Instant::now() < deadline,
            "lttng-sessiond started but {ROOT_SESSIOND_SOCKET} never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A name no other test (in this or another process) uses: `prefix` plus
/// the pid, a counter and the time.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// A temporary directory, removed with its contents when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory under /tmp.
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique_name(prefix));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir(path)
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The crasher fixture: `crasher TAG COUNT exit|segv|abort [ALLOC_MB [zero|random]] [NAME]`,
/// emitting COUNT `lttng_coredump_test:step` events (`seq` 0..COUNT-1, `tag`).
pub fn crasher_path() -> PathBuf {
    PathBuf::from(env!("FIXTURE_CRASHER"))
}

/// The events of a trace (a snapshot directory), one line each, as
/// babeltrace2 prints them. Panics when babeltrace2 is missing or fails.
pub fn babeltrace_events(path: &Path) -> Vec<String> {
    let out = Command::new("babeltrace2")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run babeltrace2 (apt-get install -y babeltrace2): {e}"));
    assert!(
        out.status.success(),
        "babeltrace2 {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The `seq` values of the fixture's events with this `tag`, in trace order.
pub fn fixture_seqs(events: &[String], tag: &str) -> Vec<i64> {
    let tag_field = format!("tag = \"{tag}\"");
    events
        .iter()
        .filter(|line| line.contains("lttng_coredump_test:step") && line.contains(&tag_field))
        .filter_map(|line| {
            let rest = &line[line.find("seq = ")? + 6..];
            rest.split(|c: char| !c.is_ascii_digit() && c != '-')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// Runs the lttng command-line tool (for test set-up and inspection only;
/// the project itself never spawns it).
pub fn lttng(args: &[&str]) -> Output {
    Command::new("lttng")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run lttng (apt-get install -y lttng-tools): {e}"))
}

/// Runs the lttng CLI and returns its stdout, panicking when it fails.
pub fn lttng_ok(args: &[&str]) -> String {
    let out = lttng(args);
    assert!(
        out.status.success(),
        "lttng {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn newest_source_mtime(dir: &Path) -> SystemTime {
    let mut newest = UNIX_EPOCH;
    let Ok(entries) = fs::read_dir(dir) else {
        return newest;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        let mtime = if meta.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            newest_source_mtime(&path)
        } else {
            meta.modified().unwrap_or(UNIX_EPOCH)
        };
        newest = newest.max(mtime);
    }
    newest
}

/// The handler binary (`lttng-coredump`) built from the current sources.
///
/// `cargo test` builds only the root package's own binaries for its tests,
/// so the handler is built here, once, whenever it is missing or older than
/// the sources it is made from.
pub fn handler_binary() -> PathBuf {
    let exe = target_dir().join("debug").join("lttng-coredump");
    let _lock = FileLock::acquire("handler-build");
    let root = workspace_root();
    let sources = ["handler", "capi", "lttng-ctl", "lttng-ctl-sys"]
        .iter()
        .map(|d| newest_source_mtime(&root.join(d)))
        .chain([fs::metadata(root.join("Cargo.lock"))
            .and_then(|m| m.modified())
            .unwrap_or(UNIX_EPOCH)])
        .max()
        .unwrap_or(UNIX_EPOCH);
    let built = fs::metadata(&exe).and_then(|m| m.modified()).ok();
    if built.is_none_or(|b| b < sources) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&root)
            .args([
                "build",
                "--quiet",
                "-p",
                "lttng-coredump-handler",
                "--bin",
                "lttng-coredump",
            ])
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build the handler: {e}"));
        assert!(status.success(), "building the handler failed");
    }
    assert!(
        exe.exists(),
        "{} is missing after building it",
        exe.display()
    );
    exe
}

/// Serializes the tests that register OnAnyCoreDump triggers in the root
/// session daemon or fire them there: a fire runs every such trigger, so a
/// test's stop trigger would otherwise stop another test's session. Take it
/// before anything else a test locks, except [`CorePatternGuard`], which
/// takes it itself.
pub fn root_triggers_lock() -> FileLock {
    FileLock::acquire("root-triggers")
}

/// Owns the kernel's `core_pattern` (and `core_pipe_limit`) for one test:
/// takes a machine-wide lock so such tests never run concurrently, saves
/// both values, and restores them when dropped, including when the test
/// panics.
pub struct CorePatternGuard {
    saved_pattern: String,
    saved_pipe_limit: String,
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
        let saved_pattern = read_sysctl(CORE_PATTERN);
        let saved_pipe_limit = read_sysctl(CORE_PIPE_LIMIT);
        CorePatternGuard {
            saved_pattern,
            saved_pipe_limit,
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

    /// Copies the handler binary to a short path (the kernel takes at most
    /// 127 bytes of core_pattern) and returns that path.
    pub fn short_handler_path(&self) -> PathBuf {
        let dir = Path::new(LOCK_DIR).join("bin");
        fs::create_dir_all(&dir).expect("creating the short handler directory");
        let tmp = dir.join(format!("lttng-coredump.{}", std::process::id()));
        fs::copy(handler_binary(), &tmp).expect("copying the handler");
        let dst = dir.join("lttng-coredump");
        fs::rename(&tmp, &dst).expect("placing the handler");
        dst
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
    }
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

/// Waits for `path` to exist, up to `timeout`.
pub fn wait_for_path(path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match fs::symlink_metadata(path) {
            Ok(_) => return true,
            Err(e) if e.kind() == ErrorKind::NotFound && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(_) => return false,
        }
    }
}

/// Makes sure an unprivileged test user exists (with a home directory), in
/// the `tracing` group when asked; returns its uid and gid.
pub fn ensure_test_user(name: &str, in_tracing_group: bool) -> (u32, u32) {
    let _lock = FileLock::acquire("users");
    let exists = Command::new("id")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !exists {
        let mut cmd = Command::new("useradd");
        cmd.args(["--create-home", "--shell", "/bin/sh"]);
        if in_tracing_group {
            cmd.args(["--groups", "tracing"]);
        }
        let status = cmd.arg(name).status().expect("running useradd");
        assert!(status.success(), "useradd {name} failed");
    } else if in_tracing_group {
        let status = Command::new("usermod")
            .args(["-a", "-G", "tracing", name])
            .status()
            .expect("running usermod");
        assert!(status.success(), "usermod -a -G tracing {name} failed");
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, name])
            .output()
            .expect("running id");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("id prints a number")
    };
    (id("-u"), id("-g"))
}
