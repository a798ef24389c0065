//! Child processes under a deadline: liblttng-ctl work (and any other work
//! a caller must be able to give up on) in a forked child, after a set-up
//! step of the caller's (acting as another user is one: see `identity`).
//! This module is the one place of the engine that forks, and the crates
//! above it (the handler, the C API, the crash report) fork through it;
//! only `livecore` forks a child of its own (its tracer, for ptrace).
//! `lttng-ctl` forks nothing and only offers the process-wide lock a fork
//! is made under.
//!
//! Two kinds of children are built on [`Child`]: [`isolate`]'s, one per
//! call, which runs one piece of work and exits, and [`resident`]'s, kept
//! between calls, which serves one request after another.
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
//! # The channel and its frames
//! Parent and child talk over one Unix stream socket pair, the child's end
//! on [`CHILD_CHANNEL_FD`]. The child sends replies: a tag, the body's
//! length (u64 LE), the body; first the set-up's (done, its error, or a
//! panic), then one for the work or for each request. The parent sends
//! requests (resident children only): the length (u64 LE), the body. A
//! reply's announced length is checked against the caller's bound
//! ([`MAX_OUTPUT`] by default) before its body is read, so that a child
//! killed halfway through is told apart from one that finished and a child
//! cannot make the parent hold more than the bound.
//!
//! # Nothing waits without a bound
//! Everything the parent does with a child (send, receive, the wait for its
//! exit) is given a deadline; at the deadline the child is SIGKILLed and
//! the parent waits at most [`REAP_GRACE`] for it to die. A child that does
//! not die (it waits in the kernel uninterruptibly, for example on a user's
//! FUSE file system that never answers, where even SIGKILL only takes
//! effect once the request is answered or aborted) is left behind, not
//! waited for: when its parent exits it is reparented to init (or the
//! nearest subreaper), which reaps it whenever it does end; in a
//! long-running caller it stays that caller's child until
//! [`reap_left_behind`] reaps it.
//!
//! # What the child keeps
//! The child keeps none of the caller's descriptors: before anything else
//! it puts `/dev/null` on 0, 1 and 2 and closes everything but its channel
//! (and the descriptors the caller hands over, moved to
//! [`CHILD_KEPT_FDS`], [`CHILD_KEPT_FDS`] + 1, ...). The caller may hold
//! what the child's new identity must not reach (a core_pattern handler
//! holds the kernel's core pipe on 0, the crashed process's pidfd, the core
//! file and its directory), and a descriptor left open would also keep a
//! pipe's reader alive (the kernel waits for the core pipe's readers to go
//! before it lets the crashed process go). It dies with the thread that
//! forked it (`PR_SET_PDEATHSIG`) and prints nothing.
//!
//! # Forking a multi-threaded process
//! Only the calling thread goes on in the child. The process-wide
//! liblttng-ctl lock ([`lttng_ctl::lock`]) is held across `fork()`, so no
//! other thread is inside liblttng-ctl at that moment and the lock is in a
//! known state on both sides. Other locks (stdio, the environment) could
//! still be held by a vanished thread; the child therefore prints nothing,
//! and a child that deadlocks anyway is killed at the deadline like a hung
//! daemon. The set-up and the work run after `fork()`: what they need
//! (allocations aside, user lookups, paths) is prepared before the call.

pub mod isolate;
pub mod resident;

use lttng_ctl::error::{Error, ErrorCode, Result};
use lttng_ctl::lock;
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags};
use rustix::process::{Pid, Signal, WaitOptions, WaitStatus};
use std::ffi::{c_int, CStr};
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// The most the parent reads of one reply by default; a child that
/// announces more is killed and its reply refused (the work's answer comes
/// from a session daemon, which may be a user's own program).
pub const MAX_OUTPUT: usize = 16 << 20;

/// The longest request a resident child accepts (requests come from the
/// caller, but a bound costs nothing).
pub const MAX_REQUEST: usize = 16 << 20;

/// How long the parent waits for a child it SIGKILLed to die before it
/// leaves it behind.
pub const REAP_GRACE: Duration = Duration::from_millis(500);

/// The descriptor the child keeps its channel to the parent on.
pub const CHILD_CHANNEL_FD: RawFd = 3;

/// The first descriptor the caller's kept descriptors are put on in the
/// child (in their order).
pub const CHILD_KEPT_FDS: RawFd = CHILD_CHANNEL_FD + 1;

/// The longest error or panic text a child may send back.
const MAX_MESSAGE: usize = 64 << 10;

/// The most descriptors a child may be handed.
const MAX_KEPT: usize = 64;

/// A reply's tags.
const TAG_DONE: u8 = 0;
const TAG_SETUP_FAILED: u8 = 1;
const TAG_PANICKED: u8 = 2;
/// The tag and the length before a reply's body.
const HEADER_LEN: usize = 9;

/// How a child is started.
pub(crate) struct Spawn<'a> {
    /// What `ps` shows (at most 15 bytes are kept); `None`: the caller's.
    pub name: Option<&'a CStr>,
    /// Descriptors the child keeps, as [`CHILD_KEPT_FDS`], ... in order.
    pub keep: &'a [BorrowedFd<'a>],
    /// Which child, in errors: "the isolated child", "a resident child".
    pub kind: &'static str,
    /// Completes the errors' context, as in " as user alice (uid 1000)".
    pub who: &'a str,
}

/// Why an exchange with a child failed, for the caller's choice between
/// giving up and asking a new child.
#[derive(Debug)]
pub struct CallError {
    /// What the caller reports.
    pub error: Error,
    /// The request never reached the child (its channel was already
    /// closed: it had died before): nothing of it was done, so it may be
    /// given to a new child.
    pub not_delivered: bool,
}

impl From<CallError> for Error {
    fn from(err: CallError) -> Error {
        err.error
    }
}

/// The parent's side of a forked child: its pid and the parent's end of the
/// channel (non-blocking). Dropping it kills and reaps the child (see
/// [`Child::kill`]).
#[derive(Debug)]
pub(crate) struct Child {
    pid: Pid,
    channel: OwnedFd,
    /// Bytes received past the last reply read (the next one's start).
    pending: Vec<u8>,
    kind: &'static str,
    who: String,
    /// Killed or reaped: never asked again.
    dead: bool,
}

/// The child's side of the channel, given to its main function.
pub(crate) struct ChildSide {
    channel: OwnedFd,
}

impl ChildSide {
    /// Sends one reply: the body `main` returned, or its panic.
    pub(crate) fn reply(&mut self, outcome: std::thread::Result<Vec<u8>>) -> bool {
        let frame = match outcome {
            Ok(body) => frame(TAG_DONE, &body),
            Err(panic) => frame(TAG_PANICKED, panic_text(&*panic).as_bytes()),
        };
        self.send(&frame)
    }

    fn send(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            match rustix::net::send(&self.channel, bytes, SendFlags::NOSIGNAL) {
                Ok(n) => bytes = &bytes[n..],
                Err(Errno::INTR) => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// The next request; `None` once the parent closed the channel (or
    /// sent what no request is).
    pub(crate) fn request(&mut self) -> Option<Vec<u8>> {
        let mut len = [0u8; 8];
        self.receive_exact(&mut len)?;
        let len = usize::try_from(u64::from_le_bytes(len)).ok()?;
        if len > MAX_REQUEST {
            return None;
        }
        let mut request = vec![0u8; len];
        self.receive_exact(&mut request)?;
        Some(request)
    }

    fn receive_exact(&mut self, mut buf: &mut [u8]) -> Option<()> {
        while !buf.is_empty() {
            match rustix::net::recv(&self.channel, &mut *buf, RecvFlags::empty()) {
                Ok((0, _)) => return None,
                Ok((n, _)) => buf = &mut buf[n..],
                Err(Errno::INTR) => {}
                Err(_) => return None,
            }
        }
        Some(())
    }
}

impl Child {
    /// Forks the child. In it: the prologue (name, death signal, only the
    /// channel, `/dev/null` and the kept descriptors left), then `setup`,
    /// whose outcome is the first reply; when it succeeded, `main` with the
    /// channel and the kept descriptors; then the child exits. The parent
    /// does not wait here: [`Child::receive`] reads the set-up's reply.
    pub(crate) fn spawn(
        spawn: &Spawn<'_>,
        setup: impl FnOnce() -> Result<()>,
        main: impl FnOnce(&mut ChildSide, &[BorrowedFd<'_>]),
    ) -> Result<Child> {
        if spawn.keep.len() > MAX_KEPT {
            return Err(Error::with_message(
                ErrorCode::Invalid,
                format!("more than {MAX_KEPT} descriptors to keep"),
                format!("starting {}{}", spawn.kind, spawn.who),
            ));
        }
        let (parent_end, child_end) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| os_error(e, format!("creating the channel to {}", spawn.kind)))?;
        rustix::io::ioctl_fionbio(&parent_end, true).map_err(|e| {
            os_error(
                e,
                format!("making the channel to {} non-blocking", spawn.kind),
            )
        })?;
        // Opened before the fork: nothing is opened after it.
        let null = rustix::fs::open(
            c"/dev/null",
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| os_error(e, format!("opening /dev/null for {}", spawn.kind)))?;
        let mut keep = [0 as RawFd; MAX_KEPT];
        for (slot, fd) in keep.iter_mut().zip(spawn.keep) {
            *slot = fd.as_raw_fd();
        }
        let keep = &keep[..spawn.keep.len()];
        let parent = rustix::process::getpid();

        let guard = lock::lock();
        // SAFETY: fork is called with the liblttng-ctl lock held (see the
        // module documentation); the child runs only `child_main`, which
        // never returns, and the descriptors it uses were made above.
        let pid = unsafe { libc::fork() };
        let fork_error = std::io::Error::last_os_error();
        if pid == 0 {
            // The child's copy of the lock is released so that its work can
            // take it; no other thread exists here to be holding it.
            drop(guard);
            drop(parent_end);
            child_main(parent, spawn.name, child_end, null, keep, setup, main);
        }
        drop(guard);
        drop(child_end);
        drop(null);
        if pid < 0 {
            return Err(os_error(
                fork_error,
                format!(
                    "forking {} to talk to the session daemon{}",
                    spawn.kind, spawn.who
                ),
            ));
        }
        let pid = Pid::from_raw(pid).expect("fork returned a positive pid");
        Ok(Child {
            pid,
            channel: parent_end,
            pending: Vec::new(),
            kind: spawn.kind,
            who: spawn.who.to_string(),
            dead: false,
        })
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> Pid {
        self.pid
    }

    /// Whether the child may still be asked: not killed, and still running
    /// (it may have been killed from outside since its last reply).
    pub(crate) fn is_usable(&mut self) -> bool {
        if self.dead {
            return false;
        }
        match rustix::process::waitpid(Some(self.pid), WaitOptions::NOHANG) {
            Ok(None) => true,
            // Reaped now (or by someone else): gone either way.
            _ => {
                self.dead = true;
                false
            }
        }
    }

    /// Sends one request (a length, then `request`) within `deadline` of
    /// `started`. On failure the child is killed.
    pub(crate) fn send(
        &mut self,
        request: &[u8],
        started: Instant,
        deadline: Duration,
    ) -> std::result::Result<(), CallError> {
        if self.dead {
            return Err(CallError {
                error: Error::with_message(
                    ErrorCode::Fatal,
                    format!("{} was killed earlier", self.kind),
                    format!("asking {}{}", self.kind, self.who),
                ),
                not_delivered: true,
            });
        }
        if request.len() > MAX_REQUEST {
            return Err(CallError {
                error: Error::with_message(
                    ErrorCode::Invalid,
                    format!("a request of {} bytes is over {MAX_REQUEST}", request.len()),
                    format!("asking {}{}", self.kind, self.who),
                ),
                not_delivered: true,
            });
        }
        if self.has_unasked_bytes() {
            return Err(self.failed(
                ErrorCode::Fatal,
                "sent what was not asked for".into(),
                format!("reading from {}{}", self.kind, self.who),
            ));
        }
        let mut bytes = &(request.len() as u64).to_le_bytes()[..];
        let mut written_any = false;
        for part in 0..2 {
            if part == 1 {
                bytes = request;
            }
            while !bytes.is_empty() {
                match rustix::net::send(&self.channel, bytes, SendFlags::NOSIGNAL) {
                    Ok(n) => {
                        written_any = true;
                        bytes = &bytes[n..];
                    }
                    Err(Errno::INTR) => {}
                    Err(Errno::AGAIN) => {
                        if !self.wait_for(PollFlags::OUT, started, deadline) {
                            return Err(self.timed_out(deadline));
                        }
                    }
                    Err(err) => {
                        let mut failed = self.failed(
                            ErrorCode::Fatal,
                            format!("the request could not be sent: {err}"),
                            format!("asking {}{}", self.kind, self.who),
                        );
                        failed.not_delivered = !written_any;
                        return Err(failed);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the child sent bytes nobody asked for (after its last reply).
    fn has_unasked_bytes(&mut self) -> bool {
        let mut byte = [0u8; 1];
        !self.pending.is_empty()
            || matches!(
                rustix::net::recv(&self.channel, &mut byte, RecvFlags::PEEK),
                Ok((1, _))
            )
    }

    /// Reads one reply within `deadline` of `started` and returns its body.
    /// A refused set-up is returned as it was (the child has exited and is
    /// reaped); anything else that is not a reply (a panic, a reply longer
    /// than `max_output`, the deadline) kills the child.
    pub(crate) fn receive(
        &mut self,
        max_output: usize,
        started: Instant,
        deadline: Duration,
    ) -> std::result::Result<Vec<u8>, CallError> {
        let mut chunk = [0u8; 16 * 1024];
        let (tag, len) = loop {
            if let Some(header) = self.pending.get(..HEADER_LEN) {
                let len = u64::from_le_bytes(header[1..].try_into().expect("8 bytes"));
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                // A set-up's error or a panic's text is bounded apart: the
                // caller's bound is for results.
                let bound = match header[0] {
                    TAG_DONE => max_output,
                    _ => max_output.max(MAX_MESSAGE),
                };
                if len > bound {
                    return Err(self.failed(
                        ErrorCode::Fatal,
                        format!("sent more than {bound} bytes: result refused"),
                        format!("reading from {}{}", self.kind, self.who),
                    ));
                }
                if self.pending.len() >= HEADER_LEN + len {
                    break (header[0], len);
                }
            }
            if self.dead {
                return Err(CallError {
                    error: Error::with_message(
                        ErrorCode::Fatal,
                        format!("{} was killed earlier", self.kind),
                        format!("reading from {}{}", self.kind, self.who),
                    ),
                    not_delivered: false,
                });
            }
            match rustix::net::recv(&self.channel, &mut chunk, RecvFlags::empty()) {
                Ok((0, _)) => {
                    // The child is gone: how it ended says why.
                    self.dead = true;
                    let status = reap_before(self.pid, Instant::now(), REAP_GRACE);
                    return Err(CallError {
                        error: Error::with_message(
                            ErrorCode::Fatal,
                            format!("died without a result ({})", describe_status(status)),
                            format!("{}{}", self.kind, self.who),
                        ),
                        not_delivered: false,
                    });
                }
                Ok((n, _)) => self.pending.extend_from_slice(&chunk[..n]),
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => {
                    if !self.wait_for(PollFlags::IN, started, deadline) {
                        return Err(self.timed_out(deadline));
                    }
                }
                Err(err) => {
                    return Err(self.failed(
                        ErrorCode::Fatal,
                        format!("reading the result failed: {err}"),
                        format!("reading from {}{}", self.kind, self.who),
                    ))
                }
            }
        };
        let body = self.pending[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.pending.drain(..HEADER_LEN + len);
        match tag {
            TAG_DONE => Ok(body),
            TAG_SETUP_FAILED => {
                // The child has exited after sending it.
                self.dead = true;
                reap_before(self.pid, Instant::now(), REAP_GRACE);
                Err(CallError {
                    error: decode_error(&body).unwrap_or_else(|| {
                        Error::with_message(
                            ErrorCode::Fatal,
                            "unreadable setup error",
                            format!("{}{}", self.kind, self.who),
                        )
                    }),
                    not_delivered: false,
                })
            }
            TAG_PANICKED => Err(self.failed(
                ErrorCode::Fatal,
                format!("panicked: {}", String::from_utf8_lossy(&body)),
                format!("{}{}", self.kind, self.who),
            )),
            _ => Err(self.failed(
                ErrorCode::Fatal,
                "unreadable result".into(),
                format!("{}{}", self.kind, self.who),
            )),
        }
    }

    /// Waits for a child that sent its last reply to exit, until
    /// `deadline` of `started`; kills it then (its reply is in hand).
    pub(crate) fn reap(mut self, started: Instant, deadline: Duration) {
        if !self.dead {
            self.dead = true;
            reap_before(self.pid, started, deadline);
        }
    }

    /// Kills the child (never asked again) and reaps it within
    /// [`REAP_GRACE`]; says whether it was left behind.
    pub(crate) fn kill(&mut self) -> bool {
        if self.dead {
            return false;
        }
        self.dead = true;
        kill_and_reap(self.pid).is_none()
    }

    fn failed(&mut self, code: ErrorCode, message: String, context: String) -> CallError {
        let left_behind = self.kill();
        CallError {
            error: Error::with_message(
                code,
                format!("{message}{}", left_behind_note(left_behind, self.pid)),
                context,
            ),
            not_delivered: false,
        }
    }

    fn timed_out(&mut self, deadline: Duration) -> CallError {
        self.failed(
            ErrorCode::Cancelled,
            format!(
                "session daemon did not answer within {} ms",
                deadline.as_millis()
            ),
            format!("talking to the session daemon{}", self.who),
        )
    }

    /// Waits until the channel is ready for `events`, or the deadline.
    fn wait_for(&self, events: PollFlags, started: Instant, deadline: Duration) -> bool {
        loop {
            let Some(left) = deadline.checked_sub(started.elapsed()) else {
                return false;
            };
            let timeout = Timespec::try_from(left).unwrap_or(Timespec {
                tv_sec: i64::MAX,
                tv_nsec: 0,
            });
            let mut fds = [PollFd::new(&self.channel, events)];
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(0) | Err(Errno::INTR) => {}
                // Ready, or an error the send or receive reports.
                _ => return true,
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The child: the prologue, the set-up and its reply, then `main`; exits.
fn child_main(
    parent: Pid,
    name: Option<&CStr>,
    channel: OwnedFd,
    null: OwnedFd,
    keep: &[RawFd],
    setup: impl FnOnce() -> Result<()>,
    main: impl FnOnce(&mut ChildSide, &[BorrowedFd<'_>]),
) -> ! {
    if let Some(name) = name {
        // Only what `ps` shows: a failure changes nothing else.
        let _ = rustix::thread::set_name(name);
    }
    // If the parent died before the death signal was set, nobody waits for
    // the result.
    if rustix::process::set_parent_process_death_signal(Some(Signal::KILL)).is_err()
        || rustix::process::getppid() != Some(parent)
    {
        exit(1);
    }
    let Some(channel) = keep_only_channel_and(channel, null, keep) else {
        // Nothing can be reported without the channel.
        exit(1);
    };
    let kept: Vec<BorrowedFd<'_>> = (0..keep.len())
        .map(|i| {
            // SAFETY: keep_only_channel_and put the kept descriptors at
            // CHILD_KEPT_FDS.. and nothing in this child closes them before
            // it exits.
            unsafe { BorrowedFd::borrow_raw(CHILD_KEPT_FDS + i as RawFd) }
        })
        .collect();
    // A panic is reported through the channel. No panic hook of the
    // child's own: setting one takes the hook's lock, which a thread of the
    // parent that was panicking at the fork holds forever here (the child
    // then hung until its deadline). The default hook prints on stderr,
    // which is /dev/null (its lock could be held by a vanished thread too,
    // but only a panic of the child, itself a bug, would then wait for it).
    let mut side = ChildSide { channel };
    let set_up = match catch_unwind(AssertUnwindSafe(setup)) {
        Ok(Ok(())) => side.reply(Ok(Vec::new())),
        Ok(Err(err)) => {
            side.send(&frame(TAG_SETUP_FAILED, &encode_error(&err)));
            false
        }
        Err(panic) => {
            side.reply(Err(panic));
            false
        }
    };
    if !set_up {
        exit(1);
    }
    if catch_unwind(AssertUnwindSafe(|| main(&mut side, &kept))).is_err() {
        exit(1);
    }
    exit(0)
}

/// Ends the child at once: no atexit handler, no stdio flushing (they
/// belong to the parent's state).
fn exit(status: c_int) -> ! {
    // SAFETY: _exit has no preconditions; it never returns.
    unsafe { libc::_exit(status) }
}

/// In the child, before anything else: `/dev/null` on 0, 1 and 2, the
/// channel on [`CHILD_CHANNEL_FD`], `keep` on [`CHILD_KEPT_FDS`], ... in
/// order, every other descriptor closed (see the module documentation).
/// Only async-signal-safe calls: the child of a multi-threaded process.
fn keep_only_channel_and(channel: OwnedFd, null: OwnedFd, keep: &[RawFd]) -> Option<OwnedFd> {
    // Every descriptor placed below sits under this one: the ones to move
    // are first copied at or above it, so that no dup2 overwrites another;
    // the originals are closed at once (one may sit where a copy goes).
    let above = CHILD_KEPT_FDS + keep.len() as RawFd;
    let channel_copy = rustix::io::fcntl_dupfd_cloexec(&channel, above).ok()?;
    let null_copy = rustix::io::fcntl_dupfd_cloexec(&null, above).ok()?;
    drop((channel, null));
    let (channel, null) = (channel_copy.into_raw_fd(), null_copy);
    let mut moved = [0 as RawFd; MAX_KEPT];
    for (slot, &fd) in moved.iter_mut().zip(keep) {
        // SAFETY: the caller's descriptor, open in this copy of its
        // process until the close below (`keep` is checked before the
        // fork: at most MAX_KEPT).
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        *slot = rustix::io::fcntl_dupfd_cloexec(fd, above)
            .ok()?
            .into_raw_fd();
    }
    rustix::stdio::dup2_stdin(&null).ok()?;
    rustix::stdio::dup2_stdout(&null).ok()?;
    rustix::stdio::dup2_stderr(&null).ok()?;
    // Given up: closed below with the other copies.
    let _ = null.into_raw_fd();
    let placed = std::iter::once(channel).chain(moved[..keep.len()].iter().copied());
    for (target, fd) in (CHILD_CHANNEL_FD..).zip(placed) {
        // SAFETY: plain descriptor operation on descriptors this child
        // owns; the copies' OwnedFds were given up above, so nothing
        // closes a descriptor twice.
        if unsafe { libc::dup2(fd, target) } != target {
            return None;
        }
    }
    // Everything from `above` up: the copies, and whatever the caller held
    // (rustix has no close_range).
    let first = above as libc::c_uint;
    // SAFETY: closes descriptors only; none of them is used again (the
    // copies above `above` were given up, `null` among them).
    if unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) } != 0 {
        // Kernels before 5.9: one by one, up to the descriptor limit.
        let max = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .map_or(1 << 20, |n| n.min(1 << 20)) as RawFd;
        for fd in above..max {
            // SAFETY: as above.
            unsafe { libc::close(fd) };
        }
    }
    // SAFETY: CHILD_CHANNEL_FD now holds the channel, owned here only.
    Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(CHILD_CHANNEL_FD) })
}

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.push(tag);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// A set-up error crosses the channel as: code (u32 LE), message, NUL,
/// context.
fn encode_error(err: &Error) -> Vec<u8> {
    let mut body = err.raw_code().to_le_bytes().to_vec();
    body.extend_from_slice(err.message().as_bytes());
    body.push(0);
    body.extend_from_slice(err.context().as_bytes());
    body
}

fn decode_error(body: &[u8]) -> Option<Error> {
    let code = u32::from_le_bytes(body.get(..4)?.try_into().ok()?);
    let text = body.get(4..)?;
    let nul = text.iter().position(|&b| b == 0)?;
    Some(Error::with_message(
        ErrorCode::from_raw(code),
        String::from_utf8_lossy(&text[..nul]),
        String::from_utf8_lossy(&text[nul + 1..]),
    ))
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn os_error(err: impl Into<std::io::Error>, context: impl Into<String>) -> Error {
    Error::with_message(ErrorCode::Fatal, err.into().to_string(), context)
}

/// How a wait status reads; `None` when the child was reaped elsewhere
/// (for example with SIGCHLD ignored by the host program).
fn describe_status(status: Option<WaitStatus>) -> String {
    match status {
        None => "exit status unknown".into(),
        Some(s) => match (s.exit_status(), s.terminating_signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (_, Some(signal)) => format!("killed by signal {signal}"),
            _ => format!("wait status {}", s.as_raw()),
        },
    }
}

/// Reaps a child that is exiting; kills it if it is still there at the
/// deadline.
fn reap_before(pid: Pid, started: Instant, deadline: Duration) -> Option<WaitStatus> {
    match reap_within(pid, started, deadline) {
        Reap::Status(status) => Some(status),
        Reap::Failed => None,
        Reap::StillThere => kill_and_reap(pid),
    }
}

/// What [`reap_within`] found.
enum Reap {
    /// The child was reaped: its wait status.
    Status(WaitStatus),
    /// waitpid failed (the child was reaped elsewhere).
    Failed,
    /// The child is still there at the bound.
    StillThere,
}

/// Polls for the child to end, up to `bound` after `started`, reaping it
/// when it does.
fn reap_within(pid: Pid, started: Instant, bound: Duration) -> Reap {
    // A child that has just sent its last reply is still exiting: it is
    // looked at again after 20 µs, then twice as long each time up to
    // 1 ms, so that an ending child costs microseconds, not a whole
    // millisecond's sleep. (A pidfd would wake exactly, but valgrind, which
    // the C API's tests run under, does not know pidfd_open.)
    let mut pause = Duration::from_micros(20);
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::NOHANG) {
            Ok(Some((_, status))) => return Reap::Status(status),
            Ok(None) | Err(Errno::INTR) => {}
            Err(_) => return Reap::Failed,
        }
        let Some(left) = bound.checked_sub(started.elapsed()) else {
            return Reap::StillThere;
        };
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(1));
    }
}

/// What an error adds when the child was left behind.
fn left_behind_note(left_behind: bool, pid: Pid) -> String {
    if left_behind {
        format!(
            "; the child (pid {}) did not die within {} ms of SIGKILL (it waits in the kernel, as on a file system that does not answer) and was left behind, not waited for",
            pid.as_raw_pid(),
            REAP_GRACE.as_millis()
        )
    } else {
        String::new()
    }
}

/// SIGKILLs the child and reaps it, waiting at most [`REAP_GRACE`] for it
/// to die; `None` when it did not (it is left behind: see the module
/// documentation) or was reaped elsewhere.
fn kill_and_reap(pid: Pid) -> Option<WaitStatus> {
    // `pid` is our unreaped child, so it cannot have been reused.
    let _ = rustix::process::kill_process(pid, Signal::KILL);
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
static LEFT_BEHIND: std::sync::Mutex<Vec<Pid>> = std::sync::Mutex::new(Vec::new());

fn remember_left_behind(pid: Pid) {
    LEFT_BEHIND
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(pid);
}

/// Reaps, without waiting, the children this module had to leave behind
/// and that have died since; returns how many are still there. A
/// long-running caller (the crash service) calls it from time to time.
pub fn reap_left_behind() -> usize {
    let mut left = LEFT_BEHIND
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // Kept while still running; dropped once reaped (or reaped elsewhere:
    // ECHILD).
    left.retain(|&pid| {
        matches!(
            rustix::process::waitpid(Some(pid), WaitOptions::NOHANG),
            Ok(None)
        )
    });
    left.len()
}

/// Whether the calling process leads its own session.
///
/// Not `rustix::process::getsid`: when the session's leader lives outside
/// the caller's PID namespace (a test run in a container), the kernel
/// answers 0, which rustix takes for a `Pid` that cannot be zero (a debug
/// assertion, else an invalid value).
pub fn leads_own_session() -> bool {
    // SAFETY: getsid(0) and getpid() read the caller's ids and touch no
    // memory.
    let (session, pid) = unsafe { (libc::getsid(0), libc::getpid()) };
    session == pid
}

/// What the tests of `isolate` and `resident` share.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rustix::process::{WaitId, WaitIdOptions};
    use std::os::fd::AsFd;

    /// A descriptor that names the child `pid` itself, whatever becomes of
    /// its number: opened while the child is not yet reaped.
    pub(crate) fn pidfd(pid: Pid) -> OwnedFd {
        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).unwrap()
    }

    /// Asserts that the child `pidfd` names has been reaped by this module:
    /// at once, or, when it was left behind (SIGKILL ends it, but how soon
    /// depends on the machine's load), by [`reap_left_behind`] once it has
    /// died. `what` says which call, for the failure's message.
    pub(crate) fn assert_reaped(pidfd: &OwnedFd, what: &dyn std::fmt::Display) {
        // NOWAIT: a zombie is seen, not reaped by the test.
        let look = || {
            rustix::process::waitid(
                WaitId::PidFd(pidfd.as_fd()),
                WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT,
            )
            .err()
        };
        if look() == Some(Errno::CHILD) {
            return;
        }
        let what = what.to_string();
        assert!(
            what.contains("left behind") || what == "dropped",
            "not reaped, and not said to be left behind: {what}"
        );
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        let minute = Timespec {
            tv_sec: 60,
            tv_nsec: 0,
        };
        assert_eq!(rustix::event::poll(&mut fds, Some(&minute)).unwrap(), 1);
        reap_left_behind();
        // Neither running nor a zombie: no longer a child to wait for.
        assert_eq!(look(), Some(Errno::CHILD), "{what}");
    }
}
