//! A resident child: forked and set up once (for example: it has become
//! another user for good), then given one request after another, each
//! under its own deadline. A long-running caller (the crash service) keeps
//! such children so that a crash does not pay a fork, a set-up and a reap
//! before it can talk to a session daemon.
//!
//! Every rule of the [`child`](super) module holds for each request: it is
//! sent, and its answer read, until its deadline; a child that misses it
//! is SIGKILLed and reaped within [`REAP_GRACE`] (or left behind, see
//! [`super::reap_left_behind`]), and the [`Resident`] is then dead: the
//! caller starts another one. An answer is bounded ([`MAX_OUTPUT`]); a
//! child that sends more, or sends what was not asked for, is killed.
//!
//! The child ends by itself when its channel closes (the caller dropped the
//! [`Resident`], which also SIGKILLs and reaps it).

use super::{Child, ChildSide, Spawn, MAX_OUTPUT};
use lttng_ctl::error::Result;
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

pub use super::{CallError, MAX_REQUEST, REAP_GRACE};

/// A forked child that serves requests (see the module documentation).
#[derive(Debug)]
pub struct Resident {
    child: Child,
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
        mut serve: impl FnMut(&[u8]) -> Vec<u8>,
    ) -> Result<Resident> {
        let started = Instant::now();
        let spawn = Spawn {
            name: Some(name),
            keep: &[],
            kind: "a resident child",
            who,
        };
        let child = Child::spawn(&spawn, setup, |side: &mut ChildSide, _| {
            // Until the caller closes the channel.
            while let Some(request) = side.request() {
                if !side.reply(catch_unwind(AssertUnwindSafe(|| serve(&request)))) {
                    break;
                }
            }
        })?;
        let mut resident = Resident { child };
        // The set-up's answer: empty, or its error.
        resident.child.receive(0, started, deadline)?;
        Ok(resident)
    }

    /// The child's process id.
    pub fn pid(&self) -> libc::pid_t {
        self.child.pid().as_raw_pid()
    }

    /// Whether the child may still be asked: not killed, and still running
    /// (it may have been killed from outside since its last answer).
    pub fn is_usable(&mut self) -> bool {
        self.child.is_usable()
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
        self.child.send(request, started, deadline)?;
        self.child.receive(MAX_OUTPUT, started, deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::child;
    use lttng_ctl::error::{Error, ErrorCode};
    use rustix::process::{kill_process, Pid, Signal};

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
        let mut resident = echo_pid();
        assert!(resident.call(b"fast", SECOND * 5).is_ok());
        let pid = Pid::from_raw(resident.pid()).unwrap();
        let pidfd = child::tests::pidfd(pid);
        // Stopped, the child cannot answer, whatever the machine's load.
        kill_process(pid, Signal::STOP).unwrap();
        let err = resident
            .call(b"hang", Duration::from_millis(300))
            .unwrap_err();
        assert_eq!(err.error.code(), ErrorCode::Cancelled, "{}", err.error);
        assert!(
            err.error.message().contains("within 300 ms"),
            "{}",
            err.error
        );
        assert!(!err.not_delivered);
        assert!(!resident.is_usable());
        child::tests::assert_reaped(&pidfd, &err.error);
        let again = resident.call(b"fast", SECOND).unwrap_err();
        assert!(again.not_delivered);
    }

    #[test]
    fn a_child_killed_from_outside_is_seen_before_it_is_asked() {
        let mut resident = echo_pid();
        kill_process(Pid::from_raw(resident.pid()).unwrap(), Signal::KILL).unwrap();
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
        let pidfd = child::tests::pidfd(Pid::from_raw(resident.pid()).unwrap());
        drop(resident);
        child::tests::assert_reaped(&pidfd, &"dropped");
    }
}
