//! Who may dump which process, decided before anything is touched so that
//! a refusal says why: root (with `CAP_SYS_PTRACE`), or the owner of the
//! process where the kernel would let them ptrace it. The kernel's own
//! check at `PTRACE_SEIZE` stays the real gate (an LSM or Yama may refuse
//! more); these checks only put its rules into words first:
//!
//! - the caller's real uid and gid are the process's real, effective and
//!   saved ones (a set-uid or set-gid program is refused);
//! - the process is dumpable (the files of `/proc/PID` are then its
//!   user's; a non-dumpable process's are root's);
//! - the process holds no capability the caller lacks.
//!
//! A kernel thread, a zombie and a pid that names no process are refused
//! whoever asks.

use crate::procfs::{self, Stat, Status, PF_KTHREAD};
use crate::report::{ErrorKind, LiveError, Result};
use crate::sys::{self, Pid};
use std::os::unix::fs::MetadataExt;

/// `CAP_SYS_PTRACE`'s bit in a capability set.
const CAP_SYS_PTRACE: u64 = 1 << 19;

/// The process to dump, as found before the dump.
#[derive(Debug, Clone)]
pub struct Target {
    pub pid: Pid,
    pub status: Status,
    pub stat: Stat,
    /// When the pid given was a thread's: the process it belongs to.
    pub given_thread: Option<Pid>,
}

/// The caller's capabilities (effective, permitted).
fn caller_capabilities() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    (field("CapEff:"), field("CapPrm:"))
}

fn no_such_process(pid: Pid) -> LiveError {
    LiveError::new(
        ErrorKind::NoSuchProcess,
        format!("no process has pid {pid}"),
    )
}

/// Finds the process and checks that the caller may dump it.
pub fn check(pid: Pid) -> Result<Target> {
    if pid <= 0 {
        return Err(LiveError::new(
            ErrorKind::Invalid,
            format!("{pid} is not a process id"),
        ));
    }
    let status = procfs::status(pid).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => no_such_process(pid),
        _ => LiveError::new(
            ErrorKind::Internal,
            format!("reading /proc/{pid}/status: {e}"),
        ),
    })?;
    // A thread's id names its process too (/proc/TID exists, hidden).
    let (pid, given_thread, status) = if status.tgid != pid && status.tgid > 0 {
        let leader = procfs::status(status.tgid).map_err(|_| no_such_process(pid))?;
        (status.tgid, Some(pid), leader)
    } else {
        (pid, None, status)
    };
    let stat = procfs::stat(pid).map_err(|_| no_such_process(pid))?;
    if stat.flags & PF_KTHREAD != 0 || status.kthread {
        return Err(LiveError::new(
            ErrorKind::KernelThread,
            format!(
                "process {pid} ({}) is a kernel thread: it has no user memory to dump",
                status.name
            ),
        ));
    }
    if is_zombie(pid, &status) {
        return Err(LiveError::new(
            ErrorKind::Zombie,
            format!(
                "process {pid} ({}) is a zombie: it has exited and only waits for its parent to reap it; there is nothing left to dump",
                status.name
            ),
        ));
    }
    check_rights(pid, &status)?;
    if status.tracer_pid != 0 {
        return Err(LiveError::new(
            ErrorKind::PermissionDenied,
            format!(
                "process {pid} ({}) is being traced by process {} (a debugger, strace?): a process can have one tracer only",
                status.name, status.tracer_pid
            ),
        ));
    }
    Ok(Target {
        pid,
        status,
        stat,
        given_thread,
    })
}

/// A zombie: its main thread is dead and no other thread lives (a main
/// thread that called `pthread_exit` while others run is not a zombie
/// process).
fn is_zombie(pid: Pid, status: &Status) -> bool {
    if !matches!(status.state, 'Z' | 'X') {
        return false;
    }
    let tids = procfs::tasks(pid).unwrap_or_default();
    !tids
        .iter()
        .filter(|&&tid| tid != pid)
        .any(|&tid| procfs::task_stat(pid, tid).is_ok_and(|s| !matches!(s.state, 'Z' | 'X')))
}

/// The ptrace rules, for a caller without `CAP_SYS_PTRACE`.
fn check_rights(pid: Pid, status: &Status) -> Result<()> {
    let (caps_effective, caps_permitted) = caller_capabilities();
    if caps_effective & CAP_SYS_PTRACE != 0 {
        return Ok(());
    }
    let (uids, gids) = sys::credentials();
    let (uid, gid) = (uids[0], gids[0]);
    let t_uids = &status.uids[..3];
    let t_gids = &status.gids[..3];
    let name = &status.name;
    if t_uids[0] != uid {
        return Err(LiveError::new(
            ErrorKind::PermissionDenied,
            format!(
                "process {pid} ({name}) belongs to uid {}: only root or its owner may dump it",
                t_uids[0]
            ),
        ));
    }
    if t_uids.iter().any(|&u| u != uid) || t_gids.iter().any(|&g| g != gid) {
        return Err(LiveError::new(
            ErrorKind::PermissionDenied,
            format!(
                "process {pid} ({name}) runs with other rights than its owner's (uids {:?}, gids {:?}: a set-uid or set-gid program): only root may dump it",
                t_uids, t_gids
            ),
        ));
    }
    // A non-dumpable process's /proc files belong to root.
    let owner = std::fs::metadata(format!("/proc/{pid}/stat"))
        .map(|m| m.uid())
        .map_err(|_| no_such_process(pid))?;
    if owner != t_uids[1] {
        return Err(LiveError::new(
            ErrorKind::PermissionDenied,
            format!(
                "process {pid} ({name}) is not dumpable (it made itself so, or changed its identity): only root may dump it"
            ),
        ));
    }
    let lacking = status.cap_permitted & !caps_permitted;
    if lacking != 0 {
        return Err(LiveError::new(
            ErrorKind::PermissionDenied,
            format!(
                "process {pid} ({name}) holds capabilities you lack (mask {lacking:#x}): only root may dump it"
            ),
        ));
    }
    Ok(())
}

/// The error for a `PTRACE_SEIZE` the kernel refused although the checks
/// above passed (an LSM, Yama's ptrace_scope, a process that changed its
/// identity meanwhile).
pub fn kernel_refused(pid: Pid, tid: Pid, err: std::io::Error) -> LiveError {
    let yama = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .map(|s| format!(" (kernel.yama.ptrace_scope is {})", s.trim()))
        .unwrap_or_default();
    LiveError::new(
        ErrorKind::PermissionDenied,
        format!("the kernel refused to trace thread {tid} of process {pid}: {err}{yama}"),
    )
}
