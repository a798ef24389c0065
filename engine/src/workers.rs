//! Resident children for the fires of a long-running caller (the crash
//! service): one kept per identity it acts as, already that identity, so
//! that a crash's snapshot costs the session daemon's time and not also a
//! fork, a change of identity and a reap (`child::resident`).
//!
//! The rules of the forked children all hold:
//! - **as that identity and no other**: a child is made for one identity
//!   (uid, groups, home, which daemon) and kept under it; it is only given
//!   work for an identity equal to its own, and it checks, for each
//!   request, that it still runs as the uid the request is for;
//! - **nothing waits without a bound**: each request has the fire's
//!   deadline; a child that misses it is killed (and reaped, or left
//!   behind as `isolate` does) and never used again: the next crash gets a
//!   new one, so a hung daemon costs each crash at most its deadline, as
//!   before;
//! - **limits under a storm**: a busy child is never shared; a crash that
//!   finds none idle forks one, as before. At most [`MAX_IDLE_PER_KEY`]
//!   idle children are kept per identity and [`MAX_IDLE`] in all; a
//!   child acting as a user is let go after [`USER_IDLE_LIMIT`] idle (it
//!   is that user's process: it would otherwise outlive their session and
//!   hold up `userdel`).
//!
//! A child is forked from the caller as it is at that moment, so the
//! caller keeps one for its own identity from the start ([`Workers::warm`]).

use crate::child::resident::Resident;
use crate::fire::Work;
use crate::identity::{Identity, Prepared};
use lttng_ctl::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Idle children kept for one identity (more are busy in a storm; they
/// end once done).
pub const MAX_IDLE_PER_KEY: usize = 4;
/// Idle children kept in all.
pub const MAX_IDLE: usize = 32;
/// How long a child acting as a user (not the caller) is kept idle.
pub const USER_IDLE_LIMIT: Duration = Duration::from_secs(60);

/// What `ps` shows of a resident child.
pub const CHILD_NAME: &std::ffi::CStr = c"lttng-cd-fire";

/// What a resident child is given: the work, and the uid it must be.
#[derive(Serialize)]
struct Request<'a> {
    uid: u32,
    work: &'a Work,
}

/// [`Request`] as the child reads it.
#[derive(Deserialize)]
struct Received {
    uid: u32,
    work: Work,
}

struct Idle {
    /// `None`: the caller's own identity.
    identity: Option<Identity>,
    resident: Resident,
    since: Instant,
}

/// The resident children of a long-running caller (see the module
/// documentation). Shared by its threads.
#[derive(Default)]
pub struct Workers {
    idle: Mutex<Vec<Idle>>,
    /// Children started, for the caller's logs and the tests.
    started: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("idle", &self.idle_pids().len())
            .field("started", &self.started())
            .finish()
    }
}

impl Workers {
    /// No children yet.
    pub fn new() -> Workers {
        Workers::default()
    }

    /// Starts the child acting as the caller, so that the first crash
    /// does not pay for it (and it is forked while the caller is small).
    pub fn warm(&self, deadline: Duration) -> Result<()> {
        let resident = self.start(deadline, None)?;
        self.give_back(None, resident);
        Ok(())
    }

    /// How many children were started so far.
    pub fn started(&self) -> usize {
        self.started.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The idle children: (uid they act as, `None` for the caller's own
    /// identity, and pid).
    pub fn idle_pids(&self) -> Vec<(Option<u32>, libc::pid_t)> {
        self.lock()
            .iter()
            .map(|idle| {
                (
                    idle.identity.as_ref().map(Identity::uid),
                    idle.resident.pid(),
                )
            })
            .collect()
    }

    /// Lets go of the children idle too long, and reaps children left
    /// behind earlier that have died since. The caller runs it from time to
    /// time.
    pub fn tidy(&self) {
        let expired: Vec<Idle> = {
            let mut idle = self.lock();
            let (keep, expired) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|entry| !expired(entry));
            *idle = keep;
            expired
        };
        drop(expired);
        crate::child::reap_left_behind();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `work` as `identity` (none: the caller) in a resident child,
    /// within `deadline`; returns its answer.
    pub(crate) fn run(
        &self,
        deadline: Duration,
        identity: Option<&Identity>,
        work: &Work,
    ) -> Result<Vec<u8>> {
        let started = Instant::now();
        let left = || deadline.saturating_sub(started.elapsed());
        let request = serde_json::to_vec(&Request {
            uid: identity.map_or_else(lttng_ctl::trigger::caller_uid, Identity::uid),
            work,
        })
        .map_err(|e| {
            Error::with_message(
                ErrorCode::Fatal,
                format!("cannot encode the request: {e}"),
                "asking a resident child",
            )
        })?;
        let (mut resident, reused) = match self.take(identity) {
            Some(resident) => (resident, true),
            None => (self.start(left(), identity)?, false),
        };
        let mut answer = resident.call(&request, left());
        // A kept child that had died before it got the request (killed
        // from outside between the check and the call): nothing of the
        // request was done, so a new child is asked instead.
        if reused && answer.as_ref().is_err_and(|err| err.not_delivered) {
            resident = self.start(left(), identity)?;
            answer = resident.call(&request, left());
        }
        match answer {
            Ok(bytes) => {
                if let Ok(Refused { refused }) = serde_json::from_slice(&bytes) {
                    // Never kept: it is not what it was kept as.
                    return Err(Error::with_message(
                        ErrorCode::PermissionDenied,
                        format!("the resident child refused the work: {refused}"),
                        "asking a resident child",
                    ));
                }
                self.give_back(identity, resident);
                Ok(bytes)
            }
            // The child was killed (or died): dropped here.
            Err(err) => Err(err.error),
        }
    }

    /// Forks a child that has become `identity` (none: stays the caller).
    fn start(&self, deadline: Duration, identity: Option<&Identity>) -> Result<Resident> {
        self.started
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Everything the child needs is made before the fork.
        let own = identity.cloned();
        let serve = move |request: &[u8]| serve(own.as_ref(), request);
        match identity {
            None => Resident::start(deadline, CHILD_NAME, "", || Ok(()), serve),
            Some(id) => {
                let prepared = Prepared::of(id)?;
                Resident::start(
                    deadline,
                    CHILD_NAME,
                    &prepared.who,
                    || prepared.take(id),
                    serve,
                )
            }
        }
    }

    /// An idle child of exactly this identity, still running.
    fn take(&self, identity: Option<&Identity>) -> Option<Resident> {
        let mut idle = self.lock();
        // The most recently used first: the others expire sooner.
        while let Some(at) = idle
            .iter()
            .rposition(|entry| entry.identity.as_ref() == identity)
        {
            let mut entry = idle.remove(at);
            if !expired(&entry) && entry.resident.is_usable() {
                return Some(entry.resident);
            }
        }
        None
    }

    fn give_back(&self, identity: Option<&Identity>, mut resident: Resident) {
        if !resident.is_usable() {
            return;
        }
        let mut idle = self.lock();
        let same = idle
            .iter()
            .filter(|entry| entry.identity.as_ref() == identity)
            .count();
        if same >= MAX_IDLE_PER_KEY {
            return;
        }
        if idle.len() >= MAX_IDLE {
            // The one idle longest goes.
            idle.remove(0);
        }
        idle.push(Idle {
            identity: identity.cloned(),
            resident,
            since: Instant::now(),
        });
    }
}

fn expired(entry: &Idle) -> bool {
    entry.identity.is_some() && entry.since.elapsed() > USER_IDLE_LIMIT
}

/// In the child: one request. A request for another uid than the child's
/// own is refused (the pool never sends one; this makes sure of it).
fn serve(identity: Option<&Identity>, request: &[u8]) -> Vec<u8> {
    let refused =
        |message: String| serde_json::to_vec(&Refused { refused: message }).unwrap_or_default();
    let request: Received = match serde_json::from_slice(request) {
        Ok(request) => request,
        Err(err) => return refused(format!("unreadable request: {err}")),
    };
    let (euid, ruid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getuid().as_raw(),
    );
    let expected = identity.map_or(euid, Identity::uid);
    if euid != request.uid || ruid != request.uid || expected != request.uid {
        return refused(format!(
            "a child acting as uid {euid} was asked to act as uid {}",
            request.uid
        ));
    }
    request.work.run(identity)
}

/// What a child answers to a request it refuses (never a pass: a pass has
/// no `refused`).
#[derive(Serialize, Deserialize)]
struct Refused {
    refused: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ActionPhase;

    const SECOND: Duration = Duration::from_secs(1);
    const NOBODY: u32 = 65534;

    fn uids_of(pid: libc::pid_t) -> String {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find(|line| line.starts_with("Uid:"))
            .unwrap()
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A first pass as `nobody`, whose home has no run directory: the
    /// child, as nobody, finds no daemon and asks nothing.
    fn first_pass() -> Work {
        Work::Daemon {
            acting_uid: NOBODY,
            name: "workers-unit".into(),
            extra_sessions: vec![],
            fallback: false,
            phase: ActionPhase::Snapshots,
        }
    }

    fn needs_root() {
        if !rustix::process::geteuid().is_root() {
            panic!("this test needs root (it acts as the `nobody` user)");
        }
    }

    #[test]
    fn a_child_is_kept_for_its_identity_and_used_for_no_other() {
        needs_root();
        let nobody = Identity::of_user(NOBODY).unwrap().per_user_daemon();
        let workers = Workers::new();
        let answer = workers
            .run(SECOND * 10, Some(&nobody), &first_pass())
            .unwrap();
        // A first pass's answer (nobody's home does not exist: refused).
        assert!(
            String::from_utf8_lossy(&answer).contains("\"outcomes\""),
            "{}",
            String::from_utf8_lossy(&answer)
        );
        let idle = workers.idle_pids();
        assert_eq!(idle.len(), 1, "{idle:?}");
        assert_eq!(idle[0].0, Some(NOBODY));
        let nobody_child = idle[0].1;
        assert_eq!(uids_of(nobody_child), "65534 65534 65534 65534");
        // Not dumpable: its memory is root's (/proc/PID/mem), so nobody
        // cannot ptrace it or read it.
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(format!("/proc/{nobody_child}/mem"))
                .unwrap()
                .uid(),
            0
        );
        // Asked again as nobody: the same child.
        workers
            .run(SECOND * 10, Some(&nobody), &first_pass())
            .unwrap();
        assert_eq!(workers.idle_pids(), idle);
        assert_eq!(workers.started(), 1);
        // Work as the caller (root) gets a child of its own.
        workers.warm(SECOND * 10).unwrap();
        let idle = workers.idle_pids();
        assert_eq!(idle.len(), 2, "{idle:?}");
        let root_child = idle.iter().find(|(uid, _)| uid.is_none()).unwrap().1;
        assert_ne!(root_child, nobody_child);
        assert_eq!(uids_of(root_child), "0 0 0 0");
        // The same uid with another daemon is another identity.
        let other = nobody.clone().with_lttng_home("/nonexistent-elsewhere");
        assert_ne!(other, nobody);
        assert!(workers.take(Some(&other)).is_none());
    }

    #[test]
    fn a_child_refuses_work_for_another_uid() {
        needs_root();
        let nobody = Identity::of_user(NOBODY).unwrap();
        let workers = Workers::new();
        let mut child = workers.start(SECOND * 10, Some(&nobody)).unwrap();
        let work = first_pass();
        let request = serde_json::to_vec(&Request {
            uid: 0,
            work: &work,
        })
        .unwrap();
        let answer = child.call(&request, SECOND * 10).unwrap();
        let refused: Refused = serde_json::from_slice(&answer).unwrap();
        assert!(
            refused
                .refused
                .contains("acting as uid 65534 was asked to act as uid 0"),
            "{}",
            refused.refused
        );
    }

    #[test]
    fn a_child_killed_from_outside_is_replaced() {
        needs_root();
        let nobody = Identity::of_user(NOBODY).unwrap().per_user_daemon();
        let workers = Workers::new();
        workers
            .run(SECOND * 10, Some(&nobody), &first_pass())
            .unwrap();
        let first = workers.idle_pids()[0].1;
        // Our own child, not yet reaped: the pid is its.
        let pid = rustix::process::Pid::from_raw(first).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
        let started = Instant::now();
        while std::fs::read_to_string(format!("/proc/{first}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
        {
            assert!(started.elapsed() < SECOND * 10);
            std::thread::sleep(Duration::from_millis(5));
        }
        workers
            .run(SECOND * 10, Some(&nobody), &first_pass())
            .unwrap();
        let idle = workers.idle_pids();
        assert_eq!(idle.len(), 1);
        assert_ne!(idle[0].1, first);
        assert_eq!(workers.started(), 2);
    }
}
