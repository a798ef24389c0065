//! Runs liblttng-ctl work in a short-lived forked child process, under a
//! deadline, after an optional set-up step of the caller's (acting as
//! another user is one: see the engine crate's `identity` module).
//!
//! Why a child process:
//! - liblttng-ctl has no timeouts: a session daemon that is stopped or stuck
//!   blocks its caller forever. A child can be killed when the deadline
//!   passes; a thread could not be.
//! - liblttng-ctl keeps process-global state (which daemon it connects to,
//!   from the uid, the tracing group and `LTTNG_HOME`; the credentials the
//!   daemon sees through `SO_PEERCRED`), which the set-up step may change in
//!   the child without touching the caller.
//!
//! The child runs the work and sends back the bytes it returns over a
//! close-on-exec pipe, at most [`MAX_OUTPUT`] of them. Nothing the parent
//! does waits without a bound: it reads until the deadline, then kills the
//! child and waits at most [`REAP_GRACE`] for it to die. A child that does
//! not die (it waits in the kernel uninterruptibly, for example on a user's
//! FUSE file system that never answers, where even SIGKILL only takes
//! effect once the request is answered or aborted) is left behind, not
//! waited for: when its parent exits it is reparented to init (or the
//! nearest subreaper), which reaps it whenever it does end; in a
//! long-running caller it stays that caller's child and becomes a zombie
//! once it ends, until the caller reaps its children (or ignores SIGCHLD).
//!
//! The child keeps none of the caller's descriptors: before anything else
//! it puts `/dev/null` on 0, 1 and 2 and closes everything but its result
//! pipe (and the descriptors the caller hands over with
//! [`Options::keep`], moved to 4, 5, ...). The caller may hold what the child's new identity must not reach
//! (a core_pattern handler holds the kernel's core pipe on 0, the crashed
//! process's pidfd, the core file and its directory), and a descriptor left
//! open would also keep a pipe's reader alive (the kernel waits for the
//! core pipe's readers to go before it lets the crashed process go).
//!
//! Forking a multi-threaded process leaves only the calling thread in the
//! child. The process-wide liblttng-ctl lock is held across `fork()`, so no
//! other thread is inside liblttng-ctl at that moment and the lock is in a
//! known state on both sides. Other locks (stdio, the environment) could
//! still be held by a vanished thread; the child therefore prints nothing,
//! and a child that deadlocks anyway is killed at the deadline like a
//! hung daemon.

use crate::error::{Error, ErrorCode, Result};
use crate::lock;
use std::ffi::c_int;
use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// The most the parent reads from a child; a child that sends more is
/// killed and its result refused (the work's answer comes from a session
/// daemon, which may be a user's own program).
pub const MAX_OUTPUT: usize = 16 << 20;

/// How long the parent waits for a child it SIGKILLed to die before it
/// leaves it behind.
pub const REAP_GRACE: Duration = Duration::from_millis(500);

/// The descriptor the child keeps its result pipe on.
pub(crate) const CHILD_RESULT_FD: c_int = 3;

/// What the child sends back: a tag, then a length-prefixed body, so that a
/// child killed halfway through is told apart from one that finished.
pub(crate) const TAG_DONE: u8 = 0;
/// The tag and the length before the body.
pub(crate) const HEADER_LEN: usize = 9;
pub(crate) const TAG_SETUP_FAILED: u8 = 1;
pub(crate) const TAG_PANICKED: u8 = 2;

pub(crate) fn encode(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.push(tag);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    out
}

pub(crate) fn decode(bytes: &[u8]) -> Option<(u8, &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let len = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?) as usize;
    let body = rest.get(8..)?;
    (body.len() == len).then_some((tag, body))
}

/// A setup error crosses the pipe as: code (u32 LE), message, NUL, context.
pub(crate) fn encode_error(err: &Error) -> Vec<u8> {
    let mut body = err.raw_code().to_le_bytes().to_vec();
    body.extend_from_slice(err.message().as_bytes());
    body.push(0);
    body.extend_from_slice(err.context().as_bytes());
    body
}

pub(crate) fn decode_error(body: &[u8]) -> Option<Error> {
    let code = u32::from_le_bytes(body.get(..4)?.try_into().ok()?);
    let text = body.get(4..)?;
    let nul = text.iter().position(|&b| b == 0)?;
    Some(Error::with_message(
        ErrorCode::from_raw(code),
        String::from_utf8_lossy(&text[..nul]),
        String::from_utf8_lossy(&text[nul + 1..]),
    ))
}

/// `/dev/null`, opened before a fork for the child's 0, 1 and 2 (nothing
/// is opened after fork in a multi-threaded process); `context` says for
/// which child.
pub(crate) fn open_dev_null(context: &str) -> Result<OwnedFd> {
    // SAFETY: the path is NUL-terminated; the descriptor is owned once.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if null < 0 {
        return Err(os_error(context));
    }
    // SAFETY: open just returned this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(null) })
}

pub(crate) fn os_error(context: impl Into<String>) -> Error {
    let err = std::io::Error::last_os_error();
    Error::with_message(ErrorCode::Fatal, err.to_string(), context)
}

/// Runs `work` in a forked child and returns the bytes it produced.
///
/// Errors: [`ErrorCode::Cancelled`] when the child has not finished within
/// `deadline` (it is then killed; this is what a hung session daemon looks
/// like); [`ErrorCode::Fatal`] when the child died without a result (the
/// context says how).
///
/// Must not be called with the liblttng-ctl lock held (it takes it).
pub fn run_isolated(deadline: Duration, work: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>> {
    run_isolated_after(deadline, "", || Ok(()), work)
}

/// Like [`run_isolated`], but the child first runs `setup` (to take another
/// identity, point liblttng-ctl at another daemon, ...); when `setup` fails,
/// `work` does not run and its error is returned as it was. `who` completes
/// the errors' context ("talking to the session daemon{who}"), for example
/// `" as user alice (uid 1000)"`.
///
/// `setup` and `work` run after `fork()` in a process that may have had
/// other threads: prepare what they need (allocations, user lookups) before
/// the call, and let them do only system calls and liblttng-ctl calls.
pub fn run_isolated_after(
    deadline: Duration,
    who: &str,
    setup: impl FnOnce() -> Result<()>,
    work: impl FnOnce() -> Vec<u8>,
) -> Result<Vec<u8>> {
    run_isolated_with(&Options::new(deadline), who, setup, |_| work())
}

/// How an isolated child runs besides its work: its deadline, how many
/// bytes it may send back, and which of the caller's descriptors it keeps.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// When the child is killed if it has not finished.
    pub deadline: Duration,
    /// The most the parent reads from the child (its result is refused
    /// beyond); at most [`MAX_OUTPUT`] by default.
    pub max_output: usize,
    /// Descriptors the child keeps, as 4, 5, ... in this order (0 to 2 are
    /// `/dev/null`, 3 its result pipe): a file the work reads that its new
    /// identity could not open, for example.
    pub keep: &'a [BorrowedFd<'a>],
}

impl Options<'_> {
    /// A deadline, the default bound on the result, no descriptor kept.
    pub fn new(deadline: Duration) -> Options<'static> {
        Options {
            deadline,
            max_output: MAX_OUTPUT,
            keep: &[],
        }
    }
}

/// The first descriptor [`Options::keep`] puts in the child.
pub const CHILD_KEPT_FDS: c_int = CHILD_RESULT_FD + 1;

/// [`run_isolated_after`] with all of [`Options`]; `work` gets the child's
/// copies of [`Options::keep`], in their order.
pub fn run_isolated_with(
    options: &Options<'_>,
    who: &str,
    setup: impl FnOnce() -> Result<()>,
    work: impl FnOnce(&[BorrowedFd<'_>]) -> Vec<u8>,
) -> Result<Vec<u8>> {
    let started = Instant::now();
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(os_error("creating the pipe to an isolated child"));
    }
    // SAFETY: pipe2 just created both descriptors; each is owned once.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let null = open_dev_null("opening /dev/null for an isolated child")?;
    let keep: Vec<c_int> = options.keep.iter().map(|fd| fd.as_raw_fd()).collect();
    // SAFETY: getpid has no memory effects.
    let parent_pid = unsafe { libc::getpid() };

    let guard = lock::lock();
    // SAFETY: fork is called with the liblttng-ctl lock held (see the module
    // comment); the child only runs `child_main`, which never returns.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // The child's copy of the lock is released so that `work` can take
        // it; no other thread exists here to be holding it.
        drop(guard);
        drop(read_end);
        child_main(parent_pid, setup, write_end, null, &keep, work);
    }
    drop(guard);
    drop(write_end);
    drop(null);
    if pid < 0 {
        return Err(os_error(format!(
            "forking a child to talk to the session daemon{who}"
        )));
    }
    collect(
        pid,
        read_end,
        started,
        options.deadline,
        options.max_output,
        who,
    )
}

/// The child: keeps only its result pipe, runs the set-up, then the work,
/// sends the result, exits.
fn child_main(
    parent_pid: libc::pid_t,
    setup: impl FnOnce() -> Result<()>,
    write_end: OwnedFd,
    null: OwnedFd,
    keep: &[c_int],
    work: impl FnOnce(&[BorrowedFd<'_>]) -> Vec<u8>,
) -> ! {
    // SAFETY: prctl/getppid have no memory effects. If the parent died
    // before PDEATHSIG was set, nobody waits for the result.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        if libc::getppid() != parent_pid {
            libc::_exit(1);
        }
    }
    let write_end = match keep_only_result_pipe_and(write_end, null, keep) {
        Some(fd) => fd,
        // SAFETY: nothing can be reported without the pipe; _exit skips
        // the parent's atexit handlers.
        None => unsafe { libc::_exit(1) },
    };
    // A panic is reported through the pipe. No panic hook of the child's
    // own: setting one takes the hook's lock, which a thread of the parent
    // that was panicking at the fork holds forever here (the child then
    // hung until its deadline). The default hook prints on stderr, which is
    // /dev/null (its lock could be held by a vanished thread too, but only
    // a panic of the child, itself a bug, would then wait for it).
    let kept: Vec<BorrowedFd<'_>> = (0..keep.len())
        .map(|i| {
            // SAFETY: keep_only_result_pipe_and put the kept descriptors
            // at CHILD_KEPT_FDS.. and nothing in this child closes them
            // before it exits.
            unsafe { BorrowedFd::borrow_raw(CHILD_KEPT_FDS + i as c_int) }
        })
        .collect();
    let outcome = catch_unwind(AssertUnwindSafe(|| match setup() {
        Ok(()) => encode(TAG_DONE, &work(&kept)),
        Err(err) => encode(TAG_SETUP_FAILED, &encode_error(&err)),
    }));
    let message = outcome.unwrap_or_else(|panic| {
        let text = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        encode(TAG_PANICKED, text.as_bytes())
    });
    let mut pipe = std::fs::File::from(write_end);
    let status = if pipe.write_all(&message).is_ok() {
        0
    } else {
        1
    };
    // SAFETY: _exit skips atexit handlers and stdio flushing, which belong
    // to the parent's state.
    unsafe { libc::_exit(status) }
}

/// In the child, before anything else: `/dev/null` on 0, 1 and 2, the
/// result pipe on [`CHILD_RESULT_FD`], every other descriptor closed (see
/// the module documentation). Only async-signal-safe calls: the child of a
/// multi-threaded process.
pub(crate) fn keep_only_result_pipe(write_end: OwnedFd, null: OwnedFd) -> Option<OwnedFd> {
    keep_only_result_pipe_and(write_end, null, &[])
}

/// [`keep_only_result_pipe`], also keeping `keep` as [`CHILD_KEPT_FDS`],
/// [`CHILD_KEPT_FDS`] + 1, ... (in this order).
fn keep_only_result_pipe_and(write_end: OwnedFd, null: OwnedFd, keep: &[c_int]) -> Option<OwnedFd> {
    use std::os::fd::IntoRawFd;
    let (mut pipe, mut null) = (write_end.into_raw_fd(), null.into_raw_fd());
    // Every descriptor placed below sits under this one: the ones to move
    // are first copied at or above it, so that no dup2 overwrites another.
    let above = CHILD_KEPT_FDS + keep.len() as c_int;
    // SAFETY: plain descriptor operations on descriptors this child owns;
    // the OwnedFds were given up above, so nothing closes them twice.
    unsafe {
        if pipe < above {
            pipe = libc::fcntl(pipe, libc::F_DUPFD_CLOEXEC, above);
        }
        if null < above {
            null = libc::fcntl(null, libc::F_DUPFD_CLOEXEC, above);
        }
        if pipe < 0 || null < 0 {
            return None;
        }
        let mut moved = [0 as c_int; 64];
        if keep.len() > moved.len() {
            return None;
        }
        for (slot, &fd) in moved.iter_mut().zip(keep) {
            *slot = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, above);
            if *slot < 0 {
                return None;
            }
        }
        for fd in 0..=2 {
            if libc::dup2(null, fd) != fd {
                return None;
            }
        }
        if libc::dup2(pipe, CHILD_RESULT_FD) != CHILD_RESULT_FD {
            return None;
        }
        for (i, &fd) in moved[..keep.len()].iter().enumerate() {
            let target = CHILD_KEPT_FDS + i as c_int;
            if libc::dup2(fd, target) != target {
                return None;
            }
        }
        let first = above as libc::c_uint;
        if libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) != 0 {
            // Kernels before 5.9: one by one, up to the descriptor limit.
            let mut limit: libc::rlimit = std::mem::zeroed();
            let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                limit.rlim_cur.min(1 << 20) as c_int
            } else {
                1 << 16
            };
            for fd in above..max {
                libc::close(fd);
            }
        }
        Some(OwnedFd::from_raw_fd(CHILD_RESULT_FD))
    }
}

/// The parent: reads the child's result until EOF or the deadline, then
/// reaps it.
fn collect(
    pid: libc::pid_t,
    read_end: OwnedFd,
    started: Instant,
    deadline: Duration,
    max_output: usize,
    who: &str,
) -> Result<Vec<u8>> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let timed_out = loop {
        let Some(left) = deadline.checked_sub(started.elapsed()) else {
            break true;
        };
        let mut pollfd = libc::pollfd {
            fd: read_end.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout_ms = left.as_millis().clamp(1, c_int::MAX as u128) as c_int;
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
        if ready < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            kill_and_reap(pid);
            return Err(os_error(format!("waiting for the isolated child{who}")));
        }
        if ready == 0 {
            continue;
        }
        // SAFETY: `chunk` is valid for its length.
        let n = unsafe { libc::read(read_end.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
        match n {
            0 => break false,
            n if n > 0 => {
                received.extend_from_slice(&chunk[..n as usize]);
                if received.len() > max_output.saturating_add(HEADER_LEN) {
                    let left_behind = kill_and_reap(pid).is_none();
                    return Err(Error::with_message(
                        ErrorCode::Fatal,
                        format!(
                            "sent more than {max_output} bytes: result refused{}",
                            left_behind_note(left_behind, pid)
                        ),
                        format!("reading from the isolated child{who}"),
                    ));
                }
            }
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => {
                kill_and_reap(pid);
                return Err(os_error(format!("reading from the isolated child{who}")));
            }
        }
    };
    drop(read_end);
    if timed_out {
        let left_behind = kill_and_reap(pid).is_none();
        return Err(Error::with_message(
            ErrorCode::Cancelled,
            format!(
                "session daemon did not answer within {} ms{}",
                deadline.as_millis(),
                left_behind_note(left_behind, pid)
            ),
            format!("talking to the session daemon{who}"),
        ));
    }
    let status = reap_before(pid, started, deadline);
    match decode(&received) {
        Some((TAG_DONE, body)) => Ok(body.to_vec()),
        Some((TAG_SETUP_FAILED, body)) => Err(decode_error(body).unwrap_or_else(|| {
            Error::with_message(
                ErrorCode::Fatal,
                "unreadable setup error",
                format!("isolated child{who}"),
            )
        })),
        Some((TAG_PANICKED, body)) => Err(Error::with_message(
            ErrorCode::Fatal,
            format!("panicked: {}", String::from_utf8_lossy(body)),
            format!("isolated child{who}"),
        )),
        _ => Err(Error::with_message(
            ErrorCode::Fatal,
            format!("died without a result ({})", describe_status(status)),
            format!("isolated child{who}"),
        )),
    }
}

/// How a wait status reads; `None` when the child was reaped elsewhere
/// (for example with SIGCHLD ignored by the host program).
pub(crate) fn describe_status(status: Option<c_int>) -> String {
    match status {
        None => "exit status unknown".into(),
        Some(s) if libc::WIFEXITED(s) => format!("exit status {}", libc::WEXITSTATUS(s)),
        Some(s) if libc::WIFSIGNALED(s) => format!("killed by signal {}", libc::WTERMSIG(s)),
        Some(s) => format!("wait status {s}"),
    }
}

/// Reaps a child that closed its end of the pipe (it is exiting); kills it
/// if it is still there at the deadline.
pub(crate) fn reap_before(pid: libc::pid_t, started: Instant, deadline: Duration) -> Option<c_int> {
    match reap_within(pid, started, deadline) {
        Reap::Status(status) => Some(status),
        Reap::Failed => None,
        Reap::StillThere => kill_and_reap(pid),
    }
}

/// What [`reap_within`] found.
enum Reap {
    /// The child was reaped: its wait status.
    Status(c_int),
    /// waitpid failed (the child was reaped elsewhere).
    Failed,
    /// The child is still there at the bound.
    StillThere,
}

/// Polls for the child to end, up to `bound` after `started`, reaping it
/// when it does.
fn reap_within(pid: libc::pid_t, started: Instant, bound: Duration) -> Reap {
    // A child that has just closed its result pipe is still exiting: it is
    // looked at again after 20 µs, then twice as long each time up to
    // 1 ms, so that an ending child costs microseconds, not a whole
    // millisecond's sleep. (A pidfd would wake exactly, but valgrind, which
    // the C API's tests run under, does not know pidfd_open.)
    let mut pause = Duration::from_micros(20);
    loop {
        let mut status = 0;
        // SAFETY: valid out-pointer; `pid` is our child.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            return Reap::Status(status);
        }
        if rc < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Reap::Failed;
        }
        let Some(left) = bound.checked_sub(started.elapsed()) else {
            return Reap::StillThere;
        };
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(1));
    }
}

/// What an error adds when the child was left behind.
pub(crate) fn left_behind_note(left_behind: bool, pid: libc::pid_t) -> String {
    if left_behind {
        format!(
            "; the child (pid {pid}) did not die within {} ms of SIGKILL (it waits in the kernel, as on a file system that does not answer) and was left behind, not waited for",
            REAP_GRACE.as_millis()
        )
    } else {
        String::new()
    }
}

/// SIGKILLs the child and reaps it, waiting at most [`REAP_GRACE`] for it
/// to die; `None` when it did not (it is left behind: see the module
/// documentation) or was reaped elsewhere.
pub(crate) fn kill_and_reap(pid: libc::pid_t) -> Option<c_int> {
    // SAFETY: `pid` is our unreaped child, so it cannot have been reused.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    match reap_within(pid, Instant::now(), REAP_GRACE) {
        Reap::Status(status) => Some(status),
        Reap::Failed => None,
        Reap::StillThere => {
            remember_left_behind(pid);
            None
        }
    }
}

/// Children SIGKILLed that had not died within [`REAP_GRACE`]: reaped by
/// [`reap_left_behind`] once they do, so that a long-running caller does
/// not keep their zombies.
static LEFT_BEHIND: std::sync::Mutex<Vec<libc::pid_t>> = std::sync::Mutex::new(Vec::new());

fn remember_left_behind(pid: libc::pid_t) {
    LEFT_BEHIND
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(pid);
}

/// Reaps, without waiting, the children this module (or `resident`) had to
/// leave behind and that have died since; returns how many are still
/// there. A long-running caller (the crash service) calls it from time to
/// time.
pub fn reap_left_behind() -> usize {
    let mut left = LEFT_BEHIND
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    left.retain(|&pid| {
        let mut status = 0;
        // SAFETY: valid out-pointer; `pid` is our unreaped child (or was
        // reaped elsewhere: ECHILD, dropped from the list).
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        rc == 0
    });
    left.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_work_s_bytes_come_back() {
        let out = run_isolated(SECOND * 5, || b"hello".repeat(50_000)).unwrap();
        assert_eq!(out, b"hello".repeat(50_000));
    }

    #[test]
    fn work_runs_in_another_process() {
        let me = std::process::id();
        let out = run_isolated(SECOND * 5, || std::process::id().to_string().into_bytes()).unwrap();
        assert_ne!(String::from_utf8(out).unwrap(), me.to_string());
    }

    #[test]
    fn a_hung_child_is_cancelled_at_the_deadline_and_reaped() {
        let pid_file = std::env::temp_dir().join(format!("isolate-hung-{}", std::process::id()));
        let started = Instant::now();
        let err = run_isolated(Duration::from_millis(300), || {
            std::fs::write(&pid_file, std::process::id().to_string()).unwrap();
            std::thread::sleep(Duration::from_secs(60));
            Vec::new()
        })
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Cancelled);
        assert!(err.message().contains("within 300 ms"), "{err}");
        assert!(started.elapsed() < SECOND * 5, "{:?}", started.elapsed());
        let child: libc::pid_t = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
        std::fs::remove_file(&pid_file).unwrap();
        // Neither running nor a zombie: kill(pid, 0) finds no such process.
        // SAFETY: signal 0 only checks for existence.
        let rc = unsafe { libc::kill(child, 0) };
        assert_eq!(rc, -1, "child {child} is still there");
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::ESRCH)
        );
    }

    #[test]
    fn a_child_that_sends_more_than_the_bound_is_refused() {
        let err = run_isolated(SECOND * 30, || vec![b'x'; MAX_OUTPUT + 1]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Fatal);
        assert!(
            err.message()
                .contains(&format!("more than {MAX_OUTPUT} bytes")),
            "{err}"
        );
        // Exactly the bound is accepted.
        let out = run_isolated(SECOND * 30, || vec![b'x'; MAX_OUTPUT]).unwrap();
        assert_eq!(out.len(), MAX_OUTPUT);
    }

    #[test]
    fn the_child_keeps_only_its_result_pipe_and_dev_null() {
        // A descriptor of the caller's that is not close-on-exec, on 0 and
        // elsewhere, as a core_pattern handler's core pipe would be.
        let file = std::fs::File::open("/proc/self/status").unwrap();
        // SAFETY: dup of a descriptor this test owns; closed below.
        let extra = unsafe { libc::dup(file.as_raw_fd()) };
        assert!(extra > 2);
        let out = run_isolated(SECOND * 5, || {
            let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .flatten()
                .filter_map(|e| {
                    let target = std::fs::read_link(e.path()).ok()?;
                    Some(format!("{} {}", e.file_name().to_str()?, target.display()))
                })
                .collect();
            fds.sort();
            fds.join("\n").into_bytes()
        })
        .unwrap();
        // SAFETY: closes the dup made above.
        unsafe { libc::close(extra) };
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        // read_dir's own descriptor is listed too (it is the child's own).
        assert!(lines.len() == 5, "{out}");
        for (i, line) in lines.iter().take(3).enumerate() {
            assert_eq!(*line, format!("{i} /dev/null"), "{out}");
        }
        assert!(lines[3].starts_with("3 pipe:"), "{out}");
        assert!(lines[4].contains("/proc/"), "{out}");
    }

    #[test]
    fn kept_descriptors_follow_the_result_pipe_in_order_and_the_bound_is_the_callers() {
        use std::io::{Read, Seek, Write as _};
        let mut first = tempfile_with(b"first");
        let second = tempfile_with(b"second");
        first.rewind().unwrap();
        let keep = [first.as_fd(), second.as_fd()];
        let options = Options {
            keep: &keep,
            max_output: 64,
            ..Options::new(SECOND * 5)
        };
        let out = run_isolated_with(
            &options,
            "",
            || Ok(()),
            |kept| {
                // 0 to 3, the two kept, read_dir's own: nothing else.
                let open = std::fs::read_dir("/proc/self/fd").unwrap().count();
                let mut text = Vec::new();
                assert_eq!(kept.len(), 2);
                for (i, fd) in kept.iter().enumerate() {
                    assert_eq!(fd.as_raw_fd(), CHILD_KEPT_FDS + i as c_int);
                    let mut file = std::fs::File::from(fd.try_clone_to_owned().unwrap());
                    let mut content = String::new();
                    file.rewind().unwrap();
                    file.read_to_string(&mut content).unwrap();
                    text.extend_from_slice(content.as_bytes());
                    text.push(b' ');
                }
                write!(text, "{open}").unwrap();
                text
            },
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "first second 7");
        let err = run_isolated_with(&options, "", || Ok(()), |_| vec![b'x'; 65]).unwrap_err();
        assert!(err.message().contains("more than 64 bytes"), "{err}");
    }

    fn tempfile_with(content: &[u8]) -> std::fs::File {
        use std::io::Write as _;
        let path = std::env::temp_dir().join(format!(
            "isolate-keep-{}-{}",
            std::process::id(),
            content.len()
        ));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file.write_all(content).unwrap();
        file
    }

    #[test]
    fn a_panic_in_the_child_is_an_error_not_a_crash() {
        let err = run_isolated(SECOND * 5, || panic!("boom")).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Fatal);
        assert!(err.message().contains("boom"), "{err}");
    }

    #[test]
    fn a_child_that_dies_is_an_error_with_context() {
        let err = run_isolated(SECOND * 5, || {
            // SAFETY: ends the child only.
            unsafe { libc::raise(libc::SIGKILL) };
            Vec::new()
        })
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Fatal);
        assert!(err.message().contains("signal 9"), "{err}");
    }

    #[test]
    fn a_failed_setup_is_returned_as_it_was_and_the_work_does_not_run() {
        let err = run_isolated_after(
            SECOND * 5,
            " as nobody in particular",
            || {
                Err(Error::with_message(
                    ErrorCode::PermissionDenied,
                    "setresuid: not allowed",
                    "acting as user x",
                ))
            },
            || panic!("the work ran after a failed set-up"),
        )
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
        assert_eq!(err.message(), "setresuid: not allowed");
        assert_eq!(err.context(), "acting as user x");
    }

    #[test]
    fn the_setup_runs_in_the_child_before_the_work() {
        use std::sync::atomic::{AtomicBool, Ordering};
        static SET_UP: AtomicBool = AtomicBool::new(false);
        let out = run_isolated_after(
            SECOND * 5,
            "",
            || {
                SET_UP.store(true, Ordering::SeqCst);
                Ok(())
            },
            || vec![u8::from(SET_UP.load(Ordering::SeqCst))],
        )
        .unwrap();
        assert_eq!(out, [1]);
        assert!(
            !SET_UP.load(Ordering::SeqCst),
            "the set-up ran in the caller"
        );
    }
}
