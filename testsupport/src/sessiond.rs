//! Session daemons for the tests: the shared root `lttng-sessiond
//! --no-kernel` (started when none runs, never stopped) and one starter for
//! every daemon a test starts itself (root's or a test user's).

use crate::core_pattern::CorePatternGuard;
use crate::lock::FileLock;
use crate::process::{process_id, process_name, process_tree, signal, ProcessId};
use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The root session daemon's client socket.
pub use lttng_ctl::daemon::ROOT_CLIENT_SOCKET as ROOT_SESSIOND_SOCKET;

/// True when the root session daemon answers on its client socket.
pub fn root_sessiond_alive() -> bool {
    UnixStream::connect(ROOT_SESSIOND_SOCKET).is_ok()
}

/// The lock of the root session daemon's users: every test that uses the
/// daemon holds it shared ([`ensure_sessiond`]); the one test that needs a
/// machine without a root daemon holds it exclusive ([`RootSessiondStopped`]).
const ROOT_SESSIOND_LOCK: &str = "root-sessiond";

/// A test's use of the root session daemon: while it is held, no test of
/// this suite stops the daemon.
#[must_use = "the root session daemon may be stopped by another test once this is dropped"]
pub struct RootSessiondUse {
    _shared: FileLock,
}

/// Makes sure a root user-space session daemon runs, starting one
/// (`lttng-sessiond --daemonize --no-kernel`) when none does, and keeps it
/// running for as long as the returned value is held. Panics when it
/// cannot, so that tests needing it fail instead of skipping.
pub fn ensure_sessiond() -> RootSessiondUse {
    let shared = FileLock::acquire_shared(ROOT_SESSIOND_LOCK);
    start_root_sessiond();
    RootSessiondUse { _shared: shared }
}

/// Starts the root session daemon unless it answers already.
fn start_root_sessiond() {
    if root_sessiond_alive() {
        return;
    }
    let _lock = FileLock::acquire("sessiond-start");
    if root_sessiond_alive() {
        return;
    }
    // The environment of a daemon started by hand or by systemd, whichever
    // test starts it: not cargo's (LD_LIBRARY_PATH naming target/ and the
    // toolchain's libraries, CARGO_*), which the daemon and its consumer
    // daemons would keep for the rest of the suite.
    let mut command = Command::new("lttng-sessiond");
    command
        .args(["--daemonize", "--no-kernel"])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root");
    start_daemon(command, Path::new(ROOT_RUN_DIR), "root");
}

/// A machine without a root session daemon, for one test: the root daemon
/// is stopped (with its consumer daemons) while no other test uses it, and
/// started again when this is dropped, also when the test panics. Holds the
/// core_pattern guard too: a crash under an installed handler needs the
/// root daemon, so no such test may run meanwhile.
pub struct RootSessiondStopped {
    core_pattern: Option<CorePatternGuard>,
    _exclusive: FileLock,
}

impl RootSessiondStopped {
    /// Waits until no test uses the root daemon or core_pattern, then stops
    /// the daemon.
    pub fn acquire() -> RootSessiondStopped {
        let (exclusive, core_pattern) = exclusive_root_sessiond_and_core_pattern();
        let stopped = RootSessiondStopped {
            core_pattern: Some(core_pattern),
            _exclusive: exclusive,
        };
        stop_root_sessiond();
        stopped
    }

    /// The core_pattern guard, taken with the daemon.
    pub fn core_pattern(&self) -> &CorePatternGuard {
        self.core_pattern.as_ref().expect("held until dropped")
    }
}

impl Drop for RootSessiondStopped {
    fn drop(&mut self) {
        // core_pattern first: it is a value the kernel acts on.
        drop(self.core_pattern.take());
        if let Err(panic) = std::panic::catch_unwind(start_root_sessiond) {
            eprintln!("could not start the root session daemon again: {panic:?}");
        }
    }
}

/// The exclusive root-daemon lock, then core_pattern's. Other tests take
/// them in either order while blocked on one (a shared root-daemon lock
/// while holding core_pattern's, or the other way round), so this never
/// waits for one while holding the other: it takes the exclusive lock, then
/// tries the rest and lets everything go if they are not free.
fn exclusive_root_sessiond_and_core_pattern() -> (FileLock, CorePatternGuard) {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let exclusive = FileLock::acquire(ROOT_SESSIOND_LOCK);
        if let Some(guard) = CorePatternGuard::try_acquire() {
            return (exclusive, guard);
        }
        drop(exclusive);
        assert!(
            Instant::now() < deadline,
            "the root session daemon and core_pattern were never free together in 30 min"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Stops the root session daemon named by its pid file, and waits until it
/// and every process it started (its consumer daemons and run-as helpers)
/// are gone: SIGTERM, then SIGKILL after 30 s. Its client socket is gone
/// too.
fn stop_root_sessiond() {
    let pid_file = Path::new(ROOT_RUN_DIR).join("lttng-sessiond.pid");
    let pid = match std::fs::read_to_string(&pid_file) {
        Ok(text) => text.trim().parse::<i32>().ok(),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => panic!("reading {}: {e}", pid_file.display()),
    };
    let tree = match pid.and_then(process_id) {
        Some(daemon) if process_name(daemon.0).as_deref() == Some("lttng-sessiond") => {
            process_tree(daemon)
        }
        // A stale pid file: no daemon.
        _ => Vec::new(),
    };
    if let Some(&(daemon, _)) = tree.first() {
        // The pid is the daemon's, checked by start time just before.
        signal(daemon, libc::SIGTERM);
        if !wait_gone(&tree, Duration::from_secs(30)) {
            for &(pid, _) in &tree {
                signal(pid, libc::SIGKILL);
            }
            assert!(
                wait_gone(&tree, Duration::from_secs(30)),
                "the root session daemon's processes {tree:?} outlived SIGKILL"
            );
        }
    }
    assert!(
        !root_sessiond_alive(),
        "a root session daemon still answers on {ROOT_SESSIOND_SOCKET} after its stop"
    );
    // A daemon stopped cleanly removes its socket; one killed (here, or
    // before the suite) leaves it. No daemon runs: the machine is left as
    // one where none was started.
    match std::fs::remove_file(ROOT_SESSIOND_SOCKET) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => panic!("removing the stale {ROOT_SESSIOND_SOCKET}: {e}"),
    }
}

/// Waits until none of `processes` runs (same pid and start time).
fn wait_gone(processes: &[ProcessId], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if processes
            .iter()
            .all(|&(pid, started)| process_id(pid) != Some((pid, started)))
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The root session daemon's run directory.
pub use lttng_ctl::daemon::ROOT_RUN_DIR;

/// How long a session daemon may take to answer once started: wide, for a
/// loaded machine (nothing tests how fast a daemon starts).
pub const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts a session daemon with `command` (`lttng-sessiond --daemonize
/// --no-kernel`, run as `who`) and waits until it answers on
/// `run_dir/client-lttng-sessiond`; returns its pid (from
/// `run_dir/lttng-sessiond.pid`). Panics when it cannot.
pub fn start_daemon(mut command: Command, run_dir: &Path, who: &str) -> i32 {
    let status = command.stdin(Stdio::null()).status().unwrap_or_else(|e| {
        panic!("cannot run lttng-sessiond (apt-get install -y lttng-tools): {e}")
    });
    assert!(
        status.success(),
        "lttng-sessiond --daemonize --no-kernel as {who} failed: {status}"
    );
    let socket = run_dir.join(lttng_ctl::daemon::CLIENT_SOCKET);
    let pid_file = run_dir.join("lttng-sessiond.pid");
    let deadline = Instant::now() + DAEMON_START_TIMEOUT;
    loop {
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        if let (Some(pid), true) = (pid, UnixStream::connect(&socket).is_ok()) {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "the session daemon of {who} never answered on {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
