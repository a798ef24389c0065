//! Session daemons for the tests: the shared root `lttng-sessiond
//! --no-kernel` (started when none runs, never stopped) and one starter for
//! every daemon a test starts itself (root's or a test user's).

use crate::lock::FileLock;
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
    let mut command = Command::new("lttng-sessiond");
    command.args(["--daemonize", "--no-kernel"]);
    start_daemon(command, Path::new(ROOT_RUN_DIR), "root");
}

/// The root session daemon's run directory.
pub const ROOT_RUN_DIR: &str = "/var/run/lttng";

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
