//! The root session daemon the demo traces with: the one already running,
//! or one the demo starts (`lttng-sessiond --no-kernel`, user space only)
//! and stops at the end — only that one, never a daemon it did not start.
//!
//! A started daemon is kept as a child process (not `--daemonize`d) in its
//! own process group: the demo then knows exactly which process to stop,
//! and a Ctrl-C at the terminal does not kill it before the demo has
//! destroyed its session.

use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::install::ROOT_SESSIOND_SOCKET;

/// How long a started daemon may take to answer, and to stop.
const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The daemon in use; stops it when dropped if the demo started it.
#[derive(Debug)]
pub enum SessionDaemon {
    AlreadyRunning,
    Started(Child),
}

/// Whether the root session daemon accepts connections.
pub fn root_daemon_answers() -> bool {
    UnixStream::connect(ROOT_SESSIOND_SOCKET).is_ok()
}

impl SessionDaemon {
    /// Uses the running root session daemon, or starts one.
    pub fn ensure() -> Result<SessionDaemon, String> {
        if root_daemon_answers() {
            return Ok(SessionDaemon::AlreadyRunning);
        }
        let mut child = Command::new("lttng-sessiond")
            .arg("--no-kernel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|err| {
                format!("cannot start lttng-sessiond (apt-get install -y lttng-tools): {err}")
            })?;
        let started = Instant::now();
        while !root_daemon_answers() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "lttng-sessiond --no-kernel exited at once ({status}); run it by hand to see why"
                ));
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "lttng-sessiond started but {ROOT_SESSIOND_SOCKET} did not answer within {} s",
                    START_TIMEOUT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(SessionDaemon::Started(child))
    }

    pub fn describe(&self) -> String {
        match self {
            SessionDaemon::AlreadyRunning => "using the root session daemon already running".into(),
            SessionDaemon::Started(child) => format!(
                "started a root session daemon for the demo (lttng-sessiond --no-kernel, pid {}); \
                 it is stopped at the end",
                child.id()
            ),
        }
    }

    /// Stops the daemon if the demo started it (SIGTERM, then SIGKILL);
    /// says what it did, or `None` when there was nothing to stop.
    pub fn stop(&mut self) -> Option<String> {
        let SessionDaemon::Started(child) = self else {
            return None;
        };
        let pid = child.id();
        if let Ok(Some(_)) = child.try_wait() {
            *self = SessionDaemon::AlreadyRunning;
            return Some(format!(
                "the session daemon the demo started (pid {pid}) had exited"
            ));
        }
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(child),
            rustix::process::Signal::TERM,
        );
        let started = Instant::now();
        let message = loop {
            match child.try_wait() {
                Ok(Some(_)) => {
                    break format!("stopped the session daemon the demo started (pid {pid})")
                }
                Ok(None) if started.elapsed() < STOP_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break format!(
                        "killed the session daemon the demo started (pid {pid}): it did not stop \
                         within {} s of SIGTERM",
                        STOP_TIMEOUT.as_secs()
                    );
                }
            }
        };
        // Reaped: dropping it again must not signal a reused pid.
        *self = SessionDaemon::AlreadyRunning;
        Some(message)
    }
}

impl Drop for SessionDaemon {
    fn drop(&mut self) {
        if let Some(message) = self.stop() {
            println!("{message}");
        }
    }
}
