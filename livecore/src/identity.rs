//! The process a dump is of, held by a pidfd from the start, so that a pid
//! reused meanwhile never gets another process dumped.
//!
//! Everything else names the process by its pid (`PTRACE_SEIZE`,
//! `/proc/PID`, `process_vm_readv`). A pidfd does not stop the pid from
//! being reused once its process has exited and been reaped, but it tells:
//! `pidfd_send_signal(pidfd, 0)` fails with `ESRCH` once the pidfd's
//! process has exited, whatever the pid names now. So:
//!
//! - the pidfd is opened first (or given by the caller, who checked the
//!   process through it), and the process's start time is read from
//!   `/proc/PID/stat` with the pidfd still alive after the read: it is the
//!   pidfd's process's;
//! - what the access checks read of `/proc/PID` is of it (the pidfd alive
//!   after them, the start time the same);
//! - after the threads listed are seized, before any is interrupted, and
//!   again once every thread is stopped, the pidfd must still be alive and
//!   the start time read then the one read at the start ([`Identity::verify`]).
//!   A pidfd alive after the seize means its process lived throughout, so
//!   the pid named it when its threads were seized and listed. Otherwise
//!   everything is detached (a thread seized but not yet interrupted was
//!   never stopped) and the dump is refused: the process exited; its pid
//!   now names another.
//!
//! While the threads are stopped, the process cannot exit unnoticed
//! (killed, its threads' exits are reported to the tracer first), and its
//! pid cannot be reused: a traced process that dies stays a zombie only
//! its tracer sees (its parent cannot reap it) until the tracer waits for
//! it or lets it go. Stop-and-copy still checks after its last read, before
//! letting go ([`Identity::verify`] again, and that the address space read
//! is still there: `work::check_after_copy`): what was read by pid
//! (`process_vm_readv`) was the process's only if the pidfd's process
//! outlived the reads, and that is what the check proves, whatever the
//! tracer did meanwhile.

use crate::procfs;
use crate::report::{ErrorKind, LiveError, Result};
use crate::sys::{self, Pid};
use std::os::fd::{AsRawFd, OwnedFd};

/// The process being dumped: its pid, a pidfd of it, and its start time.
#[derive(Debug)]
pub struct Identity {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    /// `/proc/PID/stat`'s start time, read while the pidfd was alive.
    pub start_time: u64,
}

/// What the pid of a process that is gone names now.
fn now_at(pid: Pid) -> &'static str {
    if std::path::Path::new(&format!("/proc/{pid}")).exists() {
        "its pid now names another process, which was left alone"
    } else {
        "no process has its pid now"
    }
}

/// The refusal when the pidfd's process is gone: what the pid names now (if
/// anything) is left alone.
pub fn gone(pid: Pid) -> LiveError {
    LiveError::new(
        ErrorKind::Exited,
        format!("the process exited; {} (pid {pid}): nothing was dumped", now_at(pid)),
    )
}

/// The refusal when the pidfd's process is found gone after stop-and-copy
/// has read its memory: what was read by pid may be another process's.
pub fn gone_during_copy(pid: Pid) -> LiveError {
    LiveError::new(
        ErrorKind::Exited,
        format!(
            "the process exited during the dump, while its memory was copied; {} (pid {pid}): the core was discarded",
            now_at(pid)
        ),
    )
}

impl Identity {
    /// Opens a pidfd of the process `pid` (a process id, not a thread's).
    pub fn open(pid: Pid) -> Result<Identity> {
        let pidfd = sys::pidfd_open(pid).map_err(|e| match e.raw_os_error() {
            Some(libc::ESRCH) => LiveError::new(
                ErrorKind::NoSuchProcess,
                format!("no process has pid {pid}"),
            ),
            _ => LiveError::new(
                ErrorKind::Internal,
                format!("pidfd_open of process {pid}: {e}"),
            ),
        })?;
        Identity::of(pidfd, pid)
    }

    /// The caller's pidfd of the process `pid`: refused if it names another
    /// process (`/proc/self/fdinfo`) or if its process has exited.
    pub fn of(pidfd: OwnedFd, pid: Pid) -> Result<Identity> {
        if pid <= 0 {
            return Err(LiveError::new(
                ErrorKind::Invalid,
                format!("{pid} is not a process id"),
            ));
        }
        match fdinfo_pid(&pidfd) {
            // Not a pidfd at all.
            None => {
                return Err(LiveError::new(
                    ErrorKind::Invalid,
                    format!("the descriptor given for process {pid} is not a pidfd"),
                ))
            }
            Some(-1) => return Err(gone(pid)),
            Some(named) if named != pid => {
                return Err(LiveError::new(
                    ErrorKind::Invalid,
                    format!(
                        "the pidfd given for process {pid} is of process {named} (or of another pid namespace)"
                    ),
                ))
            }
            Some(_) => {}
        }
        let stat = procfs::stat(pid).map_err(|_| gone(pid));
        let identity = Identity {
            pid,
            pidfd,
            start_time: 0,
        };
        // Alive after the read: the stat was its.
        identity.alive()?;
        Ok(Identity {
            start_time: stat?.start_time,
            ..identity
        })
    }

    /// `Ok` while the pidfd's process exists.
    pub fn alive(&self) -> Result<()> {
        sys::pidfd_alive(self.pidfd.as_raw_fd()).map_err(|_| gone(self.pid))
    }

    /// After its threads are seized: the pidfd's process still exists (so
    /// the pid has named it throughout) and the pid's start time, read now,
    /// is the one read at the start.
    pub fn verify(&self) -> Result<()> {
        self.alive()?;
        let now = procfs::stat(self.pid).map_err(|_| gone(self.pid))?;
        if now.start_time != self.start_time {
            return Err(gone(self.pid));
        }
        self.alive()
    }
}

/// The `Pid:` of a pidfd's `/proc/self/fdinfo` entry (-1 once its process
/// has exited, 0 when it is not in our pid namespace); `None`: not a pidfd.
fn fdinfo_pid(pidfd: &OwnedFd) -> Option<Pid> {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd())).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|v| v.trim().parse().ok())
}
