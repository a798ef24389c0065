//! A resident isolated child: `isolate`'s child, forked and set up once
//! (for example: it has become another user for good), then given one
//! request after another, each under its own deadline. A long-running
//! caller (the crash service) keeps such children so that a crash does not
//! pay a fork, a set-up and a reap before it can talk to a session daemon.
//!
//! Every rule of `isolate` holds for each request:
//! - nothing the parent does waits without a bound: a request is written,
//!   and its answer read, until its deadline; a child that misses it is
//!   SIGKILLed and reaped within [`REAP_GRACE`] (or left behind, see
//!   [`crate::child::isolate::reap_left_behind`]), and the [`Resident`] is then
//!   dead: the caller starts another one;
//! - the child keeps none of the caller's descriptors (only its end of the
//!   request socket, and `/dev/null` on 0, 1 and 2), prints nothing, and
//!   dies with the thread that forked it (`PR_SET_PDEATHSIG`);
//! - an answer is bounded ([`MAX_OUTPUT`]); a child that sends more, or
//!   sends what was not asked for, is killed.
//!
//! The child ends by itself when its socket closes (the caller dropped the
//! [`Resident`], which also SIGKILLs and reaps it).

use crate::child::isolate::{
    decode, decode_error, describe_status, encode, encode_error, keep_only_result_pipe,
    kill_and_reap, left_behind_note, open_dev_null, os_error, reap_before, CHILD_RESULT_FD,
    HEADER_LEN, MAX_OUTPUT, TAG_DONE, TAG_PANICKED, TAG_SETUP_FAILED,
};
use lttng_ctl::error::{Error, ErrorCode, Result};
use lttng_ctl::lock;
use std::ffi::{c_int, CStr};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

pub use crate::child::isolate::REAP_GRACE;

/// The longest request a child accepts (requests come from the caller, but
/// a bound costs nothing).
pub const MAX_REQUEST: usize = 16 << 20;

/// A forked child that serves requests (see the module documentation).
#[derive(Debug)]
pub struct Resident {
    pid: libc::pid_t,
    /// The parent's end of the request socket, non-blocking.
    channel: OwnedFd,
    who: String,
    /// Killed (a missed deadline, a broken answer): never asked again.
    dead: bool,
}

/// Why a request failed, for the caller's choice between giving up and
/// asking a new child.
#[derive(Debug)]
pub struct CallError {
    /// What the caller reports.
    pub error: Error,
    /// The request never reached the child (its socket was already closed:
    /// it had died before): nothing of it was done, so it may be given to a
    /// new child.
    pub not_delivered: bool,
}

impl From<CallError> for Error {
    fn from(err: CallError) -> Error {
        err.error
    }
}

impl Resident {
    /// Forks the child, named `name` (what `ps` shows; at most 15 bytes
    /// are kept): it runs `setup` once, says whether that worked, then runs
    /// `serve` on each request and sends back the bytes it returns. Waits
    /// for the set-up's answer until `deadline`.
    ///
    /// `setup` and `serve` run after `fork()` in a process that may have
    /// had other threads (see `isolate::run_isolated_after`): what they
    /// need is prepared before the call. `who` completes the errors'
    /// context, as in `isolate`.
    pub fn start(
        deadline: Duration,
        name: &CStr,
        who: &str,
        setup: impl FnOnce() -> Result<()>,
        serve: impl FnMut(&[u8]) -> Vec<u8>,
    ) -> Result<Resident> {
        let started = Instant::now();
        let mut fds = [0 as c_int; 2];
        // SAFETY: `fds` has room for the two descriptors.
        if unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        } != 0
        {
            return Err(os_error("creating the socket to a resident child"));
        }
        // SAFETY: socketpair just created both descriptors; each is owned
        // once.
        let (parent_end, child_end) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: plain descriptor flag change on a descriptor we own.
        if unsafe { libc::fcntl(parent_end.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
            return Err(os_error(
                "making the socket to a resident child non-blocking",
            ));
        }
        let null = open_dev_null("opening /dev/null for a resident child")?;
        // SAFETY: getpid has no memory effects.
        let parent_pid = unsafe { libc::getpid() };

        let guard = lock::lock();
        // SAFETY: as in `isolate`: fork with the liblttng-ctl lock held; the
        // child only runs `child_main`, which never returns.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            drop(guard);
            drop(parent_end);
            child_main(parent_pid, name, setup, serve, child_end, null);
        }
        drop(guard);
        drop(child_end);
        drop(null);
        if pid < 0 {
            return Err(os_error(format!(
                "forking a resident child to talk to the session daemon{who}"
            )));
        }
        let mut resident = Resident {
            pid,
            channel: parent_end,
            who: who.to_string(),
            dead: false,
        };
        // The set-up's answer: an empty TAG_DONE, or its error.
        resident
            .read_answer(started, deadline)
            .map_err(|err| err.error)?;
        Ok(resident)
    }

    /// The child's process id.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Whether the child may still be asked: not killed, and still running
    /// (it may have been killed from outside since its last answer).
    pub fn is_usable(&mut self) -> bool {
        if self.dead {
            return false;
        }
        let mut status = 0;
        // SAFETY: valid out-pointer; `pid` is our unreaped child.
        let rc = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
        if rc != 0 {
            // Reaped now (or by someone else): gone either way.
            self.dead = true;
            return false;
        }
        true
    }

    /// Sends `request` and returns the child's answer, all within
    /// `deadline`. On any failure but a refused set-up the child is killed
    /// and this `Resident` is dead ([`Resident::is_usable`] is false).
    pub fn call(
        &mut self,
        request: &[u8],
        deadline: Duration,
    ) -> std::result::Result<Vec<u8>, CallError> {
        let started = Instant::now();
        if self.dead {
            return Err(CallError {
                error: Error::with_message(
                    ErrorCode::Fatal,
                    "the resident child was killed earlier",
                    format!("asking a resident child{}", self.who),
                ),
                not_delivered: true,
            });
        }
        if request.len() > MAX_REQUEST {
            return Err(CallError {
                error: Error::with_message(
                    ErrorCode::Invalid,
                    format!("a request of {} bytes is over {MAX_REQUEST}", request.len()),
                    format!("asking a resident child{}", self.who),
                ),
                not_delivered: true,
            });
        }
        let mut frame = (request.len() as u64).to_le_bytes().to_vec();
        frame.extend_from_slice(request);
        self.write_all(&frame, started, deadline)?;
        self.read_answer(started, deadline)
    }

    /// Kills the child (never asked again) and reaps it within
    /// [`REAP_GRACE`]; says whether it was left behind.
    fn kill(&mut self) -> bool {
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

    /// Waits until the socket is ready for `events`, or the deadline.
    fn wait_for(&mut self, events: libc::c_short, started: Instant, deadline: Duration) -> bool {
        loop {
            let Some(left) = deadline.checked_sub(started.elapsed()) else {
                return false;
            };
            let mut pollfd = libc::pollfd {
                fd: self.channel.as_raw_fd(),
                events,
                revents: 0,
            };
            let timeout_ms = left.as_millis().clamp(1, c_int::MAX as u128) as c_int;
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
            if ready > 0 {
                return true;
            }
            if ready < 0
                && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
            {
                // Let the read or write report it.
                return true;
            }
        }
    }

    fn write_all(
        &mut self,
        mut bytes: &[u8],
        started: Instant,
        deadline: Duration,
    ) -> std::result::Result<(), CallError> {
        let mut written_any = false;
        while !bytes.is_empty() {
            // SAFETY: `bytes` is valid for its length; MSG_NOSIGNAL: a
            // closed peer is an error, not a SIGPIPE.
            let n = unsafe {
                libc::send(
                    self.channel.as_raw_fd(),
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n > 0 {
                written_any = true;
                bytes = &bytes[n as usize..];
                continue;
            }
            let err = std::io::Error::last_os_error();
            match err.kind() {
                std::io::ErrorKind::Interrupted => {}
                std::io::ErrorKind::WouldBlock => {
                    if !self.wait_for(libc::POLLOUT, started, deadline) {
                        return Err(self.timed_out(deadline));
                    }
                }
                _ => {
                    let mut failed = self.failed(
                        ErrorCode::Fatal,
                        format!("the request could not be sent: {err}"),
                        format!("asking a resident child{}", self.who),
                    );
                    failed.not_delivered = !written_any;
                    return Err(failed);
                }
            }
        }
        Ok(())
    }

    /// Reads one answer (`isolate`'s framing: tag, length, body).
    fn read_answer(
        &mut self,
        started: Instant,
        deadline: Duration,
    ) -> std::result::Result<Vec<u8>, CallError> {
        let mut received = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(len) = received
                .get(1..HEADER_LEN)
                .map(|b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
            {
                if len > MAX_OUTPUT {
                    return Err(self.failed(
                        ErrorCode::Fatal,
                        format!("announced more than {MAX_OUTPUT} bytes: answer refused"),
                        format!("reading from a resident child{}", self.who),
                    ));
                }
                if received.len() > HEADER_LEN + len {
                    return Err(self.failed(
                        ErrorCode::Fatal,
                        "sent more than one answer".into(),
                        format!("reading from a resident child{}", self.who),
                    ));
                }
                if received.len() == HEADER_LEN + len {
                    break;
                }
            }
            // SAFETY: `chunk` is valid for its length.
            let n = unsafe {
                libc::recv(
                    self.channel.as_raw_fd(),
                    chunk.as_mut_ptr().cast(),
                    chunk.len(),
                    0,
                )
            };
            if n > 0 {
                received.extend_from_slice(&chunk[..n as usize]);
                continue;
            }
            if n == 0 {
                // The child is gone: how it ended says why.
                self.dead = true;
                let status = reap_before(self.pid, Instant::now(), REAP_GRACE);
                return Err(CallError {
                    error: Error::with_message(
                        ErrorCode::Fatal,
                        format!("died without an answer ({})", describe_status(status)),
                        format!("resident child{}", self.who),
                    ),
                    not_delivered: false,
                });
            }
            let err = std::io::Error::last_os_error();
            match err.kind() {
                std::io::ErrorKind::Interrupted => {}
                std::io::ErrorKind::WouldBlock => {
                    if !self.wait_for(libc::POLLIN, started, deadline) {
                        return Err(self.timed_out(deadline));
                    }
                }
                _ => {
                    return Err(self.failed(
                        ErrorCode::Fatal,
                        format!("reading the answer failed: {err}"),
                        format!("reading from a resident child{}", self.who),
                    ))
                }
            }
        }
        match decode(&received) {
            Some((TAG_DONE, body)) => Ok(body.to_vec()),
            // A refused set-up: the child has exited; reaped here.
            Some((TAG_SETUP_FAILED, body)) => {
                self.dead = true;
                reap_before(self.pid, Instant::now(), REAP_GRACE);
                Err(CallError {
                    error: decode_error(body).unwrap_or_else(|| {
                        Error::with_message(
                            ErrorCode::Fatal,
                            "unreadable setup error",
                            format!("resident child{}", self.who),
                        )
                    }),
                    not_delivered: false,
                })
            }
            Some((TAG_PANICKED, body)) => Err(self.failed(
                ErrorCode::Fatal,
                format!("panicked: {}", String::from_utf8_lossy(body)),
                format!("resident child{}", self.who),
            )),
            _ => Err(self.failed(
                ErrorCode::Fatal,
                "unreadable answer".into(),
                format!("resident child{}", self.who),
            )),
        }
    }
}

impl Drop for Resident {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The child: keeps only its socket, runs the set-up, then serves requests
/// until the socket closes.
fn child_main(
    parent_pid: libc::pid_t,
    name: &CStr,
    setup: impl FnOnce() -> Result<()>,
    mut serve: impl FnMut(&[u8]) -> Vec<u8>,
    channel: OwnedFd,
    null: OwnedFd,
) -> ! {
    // SAFETY: as in `isolate::child_main`; PR_SET_NAME copies at most 16
    // bytes of a NUL-terminated string.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, name.as_ptr());
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        if libc::getppid() != parent_pid {
            libc::_exit(1);
        }
    }
    let channel = match keep_only_result_pipe(channel, null) {
        Some(fd) => fd,
        // SAFETY: nothing can be reported without the socket.
        None => unsafe { libc::_exit(1) },
    };
    debug_assert_eq!(channel.as_raw_fd(), CHILD_RESULT_FD);
    // No panic hook of its own: setting one takes the hook's lock, which a
    // thread of the parent that was panicking at the fork holds forever
    // here. A panic prints on stderr, which is /dev/null.
    let mut socket = std::fs::File::from(channel);
    let answer = match catch_unwind(AssertUnwindSafe(setup)) {
        Ok(Ok(())) => encode(TAG_DONE, &[]),
        Ok(Err(err)) => encode(TAG_SETUP_FAILED, &encode_error(&err)),
        Err(panic) => encode(TAG_PANICKED, panic_text(&*panic).as_bytes()),
    };
    let set_up = answer.first() == Some(&TAG_DONE);
    if socket.write_all(&answer).is_err() || !set_up {
        // SAFETY: _exit skips the parent's atexit handlers.
        unsafe { libc::_exit(1) }
    }
    loop {
        let mut len = [0u8; 8];
        if socket.read_exact(&mut len).is_err() {
            // The caller closed the socket: done.
            // SAFETY: as above.
            unsafe { libc::_exit(0) }
        }
        let len = u64::from_le_bytes(len) as usize;
        if len > MAX_REQUEST {
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
        let mut request = vec![0u8; len];
        if socket.read_exact(&mut request).is_err() {
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
        let answer = match catch_unwind(AssertUnwindSafe(|| serve(&request))) {
            Ok(body) => encode(TAG_DONE, &body),
            Err(panic) => encode(TAG_PANICKED, panic_text(&*panic).as_bytes()),
        };
        if socket.write_all(&answer).is_err() {
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn echo_pid() -> Resident {
        Resident::start(
            SECOND * 5,
            c"test-resident",
            "",
            || Ok(()),
            |request| {
                let mut out = std::process::id().to_string().into_bytes();
                out.push(b' ');
                out.extend_from_slice(request);
                out
            },
        )
        .unwrap()
    }

    #[test]
    fn one_child_answers_many_requests() {
        let mut resident = echo_pid();
        let first = resident.call(b"one", SECOND * 5).unwrap();
        let second = resident.call(b"two", SECOND * 5).unwrap();
        let pid = resident.pid().to_string();
        assert_eq!(first, format!("{pid} one").into_bytes());
        assert_eq!(second, format!("{pid} two").into_bytes());
        assert_ne!(pid, std::process::id().to_string());
        assert!(resident.is_usable());
    }

    #[test]
    fn a_missed_deadline_kills_the_child() {
        let mut resident = Resident::start(
            SECOND * 5,
            c"test-resident",
            "",
            || Ok(()),
            |request| {
                if request == b"hang" {
                    std::thread::sleep(Duration::from_secs(60));
                }
                b"ok".to_vec()
            },
        )
        .unwrap();
        assert_eq!(resident.call(b"fast", SECOND * 5).unwrap(), b"ok");
        let pid = resident.pid();
        let started = Instant::now();
        let err = resident
            .call(b"hang", Duration::from_millis(300))
            .unwrap_err();
        assert_eq!(err.error.code(), ErrorCode::Cancelled);
        assert!(started.elapsed() < SECOND * 5, "{:?}", started.elapsed());
        assert!(!resident.is_usable());
        // Reaped: no such process any more.
        // SAFETY: signal 0 only checks for existence.
        assert_eq!(unsafe { libc::kill(pid, 0) }, -1);
        let again = resident.call(b"fast", SECOND).unwrap_err();
        assert!(again.not_delivered);
    }

    #[test]
    fn a_child_killed_from_outside_is_seen_before_it_is_asked() {
        let mut resident = echo_pid();
        // SAFETY: kills our own child.
        unsafe { libc::kill(resident.pid(), libc::SIGKILL) };
        let started = Instant::now();
        while resident.is_usable() {
            assert!(started.elapsed() < SECOND * 10);
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_failed_setup_is_returned_as_it_was() {
        let err = Resident::start(
            SECOND * 5,
            c"test-resident",
            " as x",
            || {
                Err(Error::with_message(
                    ErrorCode::PermissionDenied,
                    "setresuid: not allowed",
                    "acting as user x",
                ))
            },
            |_| panic!("served after a failed set-up"),
        )
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
        assert_eq!(err.message(), "setresuid: not allowed");
    }

    #[test]
    fn a_panic_is_an_error_and_kills_the_child() {
        let mut resident = Resident::start(
            SECOND * 5,
            c"test-resident",
            "",
            || Ok(()),
            |_| panic!("boom"),
        )
        .unwrap();
        let err = resident.call(b"x", SECOND * 5).unwrap_err();
        assert!(err.error.message().contains("boom"), "{}", err.error);
        assert!(!resident.is_usable());
    }

    #[test]
    fn an_answer_over_the_bound_is_refused() {
        let mut resident = Resident::start(
            SECOND * 30,
            c"test-resident",
            "",
            || Ok(()),
            |_| vec![b'x'; MAX_OUTPUT + 1],
        )
        .unwrap();
        let err = resident.call(b"x", SECOND * 30).unwrap_err();
        assert!(err.error.message().contains("more than"), "{}", err.error);
        assert!(!resident.is_usable());
    }

    #[test]
    fn dropping_it_ends_the_child() {
        let resident = echo_pid();
        let pid = resident.pid();
        drop(resident);
        // SAFETY: signal 0 only checks for existence.
        assert_eq!(unsafe { libc::kill(pid, 0) }, -1);
    }
}
