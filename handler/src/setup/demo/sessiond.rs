//! The root session daemon the demo traces with: the one already running,
//! or one the demo starts (`lttng-sessiond --no-kernel`, user space only)
//! and stops at the end — only that one, never a daemon it did not start.
//!
//! A started daemon is kept as a child process (not `--daemonize`d) in its
//! own process group: the demo then knows exactly which process to stop,
//! and a Ctrl-C at the terminal does not kill it before the demo has
//! destroyed its session.

use anyhow::{anyhow, Context as _};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::setup::status::ROOT_SESSIOND_SOCKET;

/// How long a started daemon may take to answer, and to stop.
const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The daemon in use; stops it when dropped if the demo started it.
#[derive(Debug)]
pub struct SessionDaemon {
    /// The daemon the demo started and has not stopped yet; `None` when it
    /// uses one already running, or once it has stopped its own.
    started: Option<Child>,
}

/// Whether the root session daemon accepts connections.
pub fn root_daemon_answers() -> bool {
    UnixStream::connect(ROOT_SESSIOND_SOCKET).is_ok()
}

impl SessionDaemon {
    /// Uses the running root session daemon, or starts one.
    pub fn ensure() -> anyhow::Result<SessionDaemon> {
        if root_daemon_answers() {
            return Ok(SessionDaemon { started: None });
        }
        let mut child = Command::new("lttng-sessiond")
            .arg("--no-kernel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("cannot start lttng-sessiond (apt-get install -y lttng-tools)")?;
        let started = Instant::now();
        while !root_daemon_answers() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(anyhow!(
                    "lttng-sessiond --no-kernel exited at once ({status}); run it by hand to see why"
                ));
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(anyhow!(
                    "lttng-sessiond started but {ROOT_SESSIOND_SOCKET} did not answer within {} s",
                    START_TIMEOUT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(SessionDaemon {
            started: Some(child),
        })
    }

    pub fn describe(&self) -> String {
        match &self.started {
            None => "using the root session daemon already running".into(),
            Some(child) => format!(
                "started a root session daemon for the demo (lttng-sessiond --no-kernel, pid {}); \
                 it is stopped at the end",
                child.id()
            ),
        }
    }

    /// Stops the daemon if the demo started it (SIGTERM, then SIGKILL);
    /// says what it did, or `None` when there was nothing to stop. Stops it
    /// once: the child is taken out, so a second call (or the `Drop` that
    /// follows) has nothing left to do.
    pub fn stop(&mut self) -> Option<String> {
        self.started.take().map(stop_child)
    }
}

/// Stops and reaps the daemon the demo started; says what happened. Once
/// reaped, its pid is never signalled again (it may have been reused).
fn stop_child(mut child: Child) -> String {
    let pid = child.id();
    if let Ok(Some(_)) = child.try_wait() {
        return format!("the session daemon the demo started (pid {pid}) had exited");
    }
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    );
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => {
                return format!("stopped the session daemon the demo started (pid {pid})")
            }
            Ok(None) if started.elapsed() < STOP_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return format!(
                    "killed the session daemon the demo started (pid {pid}): it did not stop \
                     within {} s of SIGTERM",
                    STOP_TIMEOUT.as_secs()
                );
            }
        }
    }
}

impl Drop for SessionDaemon {
    fn drop(&mut self) {
        if let Some(message) = self.stop() {
            println!("{message}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo's clean-up stopped its daemon, then the value's `Drop`
    /// stopped it again, recursively, until the stack overflowed.
    #[test]
    fn a_started_daemon_is_stopped_once_and_dropping_it_after_does_nothing() {
        let child = Command::new("sleep")
            .arg("1000")
            .spawn()
            .expect("spawning sleep");
        let pid = child.id();
        let mut daemon = SessionDaemon {
            started: Some(child),
        };
        let message = daemon.stop().expect("a started daemon is stopped");
        assert!(
            message.contains(&format!(
                "stopped the session daemon the demo started (pid {pid})"
            )),
            "{message}"
        );
        assert_eq!(daemon.stop(), None);
        drop(daemon);
    }

    #[test]
    fn dropping_a_started_daemon_stops_it() {
        let child = Command::new("sleep")
            .arg("1000")
            .spawn()
            .expect("spawning sleep");
        let pid = rustix::process::Pid::from_child(&child);
        // Keeps the pid from being reused while the test looks at it: the
        // zombie is reaped by the drop, so look before and through a pidfd.
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .expect("pidfd_open");
        drop(SessionDaemon {
            started: Some(child),
        });
        // Reaped: waiting on the pidfd reports no child left to wait for.
        let waited = rustix::process::waitid(
            rustix::process::WaitId::PidFd(rustix::fd::AsFd::as_fd(&pidfd)),
            rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOHANG,
        );
        assert!(waited.is_err(), "the child was not reaped: {waited:?}");
    }
}
