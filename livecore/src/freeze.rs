//! Stopping every thread of a process without it noticing, and letting
//! them all go again.
//!
//! Each thread is `PTRACE_SEIZE`d (no stop, no signal) then
//! `PTRACE_INTERRUPT`ed: it stops in the kernel on its way back to user
//! space (a blocking system call is interrupted and will be restarted), in
//! a ptrace stop that neither its parent's `waitpid(WUNTRACED)` nor
//! SIGCHLD reports. `/proc/PID/task` is read again until every thread it
//! lists is stopped: a thread created in between by a thread already
//! seized is attached by the kernel (`PTRACE_O_TRACECLONE`) and starts
//! stopped; one created by a thread not yet seized is found by the next
//! read. A thread found about to take a signal (a signal-delivery stop)
//! keeps it and gets it when it is let go; a process already stopped by
//! job control stays stopped.
//!
//! Letting go is `PTRACE_DETACH`. A thread whose endless wait our
//! interrupt made fail with EINTR is rewound to wait again as soon as it is
//! seen stopped (`restart`), so that it waits again however it is let go. If the tracer dies instead, the kernel
//! detaches its tracees itself, and a seized thread that was interrupted
//! (not group-stopped) simply runs on: that is what makes killing the
//! dumper at any stage safe.
//!
//! A thread in an uninterruptible sleep cannot stop until it leaves it; it
//! is given [`crate::Options::stop_timeout`], then the dump goes on without
//! its registers. It stops as soon as it leaves the kernel (its interrupt
//! is pending) and is let go as soon as the tracer sees it
//! ([`Tracer::detach_when_stopped`]).

use crate::procfs;
use crate::report::{ErrorKind, LiveError, Result};
use crate::sys::{self, Pid, PTRACE_EVENT_CLONE, PTRACE_EVENT_STOP};
use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::c_int;
use std::time::{Duration, Instant};

/// The options every thread is seized with: system-call stops tell
/// themselves apart, and threads created while stopping are attached.
pub const SEIZE_OPTIONS: c_int = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_TRACECLONE;

/// What a wait status says a tracee did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Stopped by `PTRACE_INTERRUPT` (or at birth, auto-attached).
    Interrupted,
    /// Stopped by job control (the process is stopped) with this signal.
    GroupStop(c_int),
    /// About to take this signal (a signal-delivery stop).
    Signal(c_int),
    /// At a system-call entry or exit (`PTRACE_SYSCALL`).
    Syscall,
    /// At a ptrace event (`PTRACE_EVENT_*`).
    Ptrace(c_int),
    /// Gone (exited or killed).
    Exited,
}

impl Event {
    pub fn of_status(status: c_int) -> Event {
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            return Event::Exited;
        }
        let signal = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        match event {
            0 if signal == libc::SIGTRAP | 0x80 => Event::Syscall,
            0 => Event::Signal(signal),
            e if e == PTRACE_EVENT_STOP => match signal {
                libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => {
                    Event::GroupStop(signal)
                }
                _ => Event::Interrupted,
            },
            e => Event::Ptrace(e),
        }
    }
}

/// The tracer's view of its tracees: wait statuses collected (by
/// `waitpid(-1, __WALL)`, SIGCHLD blocked and waited for with a timeout, so
/// that no wait is unbounded) and handed out per thread.
pub struct Tracer {
    queue: HashMap<Pid, VecDeque<c_int>>,
    /// Threads that had not stopped when they were let go: detached as soon
    /// as they stop.
    stragglers: HashSet<Pid>,
}

impl Tracer {
    /// Must be created in the tracing thread; blocks SIGCHLD there.
    pub fn new() -> Result<Tracer> {
        sys::block_sigchld()
            .map_err(|e| LiveError::new(ErrorKind::Internal, format!("blocking SIGCHLD: {e}")))?;
        Ok(Tracer {
            queue: HashMap::new(),
            stragglers: HashSet::new(),
        })
    }

    /// Collects every status waiting to be reaped.
    fn drain(&mut self) {
        while let Ok(Some((pid, status))) = sys::waitpid(-1, libc::__WALL | libc::WNOHANG) {
            if self.stragglers.contains(&pid) {
                let event = Event::of_status(status);
                if event != Event::Exited {
                    let _ = sys::detach(pid, resume_signal(event));
                }
                self.stragglers.remove(&pid);
                continue;
            }
            self.queue.entry(pid).or_default().push_back(status);
        }
    }

    /// The next event of `pid`, waiting until `deadline`; `None` then.
    pub fn wait(&mut self, pid: Pid, deadline: Instant) -> Option<Event> {
        loop {
            if let Some(status) = self.queue.get_mut(&pid).and_then(VecDeque::pop_front) {
                return Some(Event::of_status(status));
            }
            self.drain();
            if self.queue.get(&pid).is_some_and(|q| !q.is_empty()) {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            // SIGCHLD stays pending while blocked, so none is missed between
            // the drain and this wait; the short bound only guards against a
            // SIGCHLD consumed for another child.
            sys::wait_for_sigchld((deadline - now).min(Duration::from_millis(20)));
        }
    }

    /// Detaches `tid` as soon as it stops (it had not stopped when the
    /// others were let go).
    pub fn detach_when_stopped(&mut self, tid: Pid) {
        if let Some(statuses) = self.queue.remove(&tid) {
            if statuses
                .iter()
                .any(|&s| Event::of_status(s) != Event::Exited)
            {
                let _ = sys::detach(tid, 0);
                return;
            }
        }
        self.stragglers.insert(tid);
    }

    /// Lets go of the stragglers that have stopped since.
    pub fn release_stragglers(&mut self) {
        if !self.stragglers.is_empty() {
            self.drain();
        }
    }
}

/// The signal a thread must get back when it is let go.
fn resume_signal(event: Event) -> c_int {
    match event {
        Event::Signal(signal) => signal,
        _ => 0,
    }
}

/// One thread of the stopped process.
#[derive(Debug, Clone)]
pub struct Thread {
    pub tid: Pid,
    /// Why it is stopped; `None`: it has not stopped (yet).
    pub stop: Option<Event>,
    /// Its `/proc` state letter before it was seized.
    pub state_before: char,
    /// Its siginfo when stopped about to take a signal.
    pub siginfo: Option<[u8; 128]>,
    /// `CLOCK_MONOTONIC` when its stop was seen, and when it was let go
    /// (nanoseconds; 0: not yet). It was stopped at least between the two.
    pub stop_seen_ns: u64,
    pub let_go_ns: u64,
    /// Set when the thread was stopped in an endless wait our interrupt made
    /// fail with EINTR, and was rewound at once to wait again
    /// (`restart::interrupted_endless_wait`): its registers with the EINTR,
    /// given back if a signal it would take came meanwhile, and its blocked
    /// signals.
    pub rewound: Option<(libc::user_regs_struct, u64)>,
}

impl Thread {
    pub fn stopped(&self) -> bool {
        self.stop.is_some()
    }

    /// The signal it gets back when let go.
    pub fn resume_signal(&self) -> c_int {
        self.stop.map_or(0, resume_signal)
    }
}

/// A process whose threads are stopped; they are let go by
/// [`Frozen::resume`], or when this is dropped.
pub struct Frozen {
    pub pid: Pid,
    pub threads: Vec<Thread>,
    /// When the first thread was asked to stop.
    pub since: Instant,
    /// Threads that exited while being stopped.
    pub exited: Vec<Pid>,
    resumed: bool,
}

/// Stops every thread of `pid`; threads that have not stopped by
/// `timeout` are left running (see the module documentation). `on_seized`
/// is called once every thread listed is seized, before any is
/// interrupted. `verify` says whether `pid` still names the process to
/// dump (`identity`): it is asked after each round of seizes, before those
/// threads are interrupted (a process that is not the one is never
/// stopped), and once every thread is stopped; if it fails, every thread is
/// let go and its error returned.
pub fn freeze(
    tracer: &mut Tracer,
    pid: Pid,
    timeout: Duration,
    on_seized: impl FnOnce(),
    verify: impl Fn() -> Result<()>,
) -> Result<Frozen> {
    let mut frozen = Frozen {
        pid,
        threads: Vec::new(),
        since: Instant::now(),
        exited: Vec::new(),
        resumed: false,
    };
    let me = sys::getpid();
    let mut first = true;
    let mut on_seized = Some(on_seized);
    let deadline = Instant::now() + timeout;
    let mut seized = Vec::new();
    loop {
        let tids = procfs::tasks(pid).map_err(|_| exited_error(pid))?;
        let mut new = 0;
        for tid in tids {
            if frozen.threads.iter().any(|t| t.tid == tid) || frozen.exited.contains(&tid) {
                continue;
            }
            new += 1;
            let state_before = procfs::task_stat(pid, tid).map(|s| s.state).unwrap_or('?');
            if first {
                frozen.since = Instant::now();
                first = false;
            }
            match sys::seize(tid, SEIZE_OPTIONS) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                    frozen.exited.push(tid);
                    continue;
                }
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                    let status = procfs::task_status(pid, tid);
                    match status {
                        // Attached by the kernel when its creator was.
                        Ok(s) if s.tracer_pid == me => {}
                        // A dead main thread (the others live on).
                        Ok(s) if matches!(s.state, 'Z' | 'X') => {
                            frozen.exited.push(tid);
                            continue;
                        }
                        Err(_) => {
                            frozen.exited.push(tid);
                            continue;
                        }
                        Ok(_) => return Err(crate::access::kernel_refused(pid, tid, e)),
                    }
                }
                Err(e) => return Err(crate::access::kernel_refused(pid, tid, e)),
            }
            seized.push(tid);
            frozen.threads.push(Thread {
                tid,
                stop: None,
                state_before,
                siginfo: None,
                stop_seen_ns: 0,
                let_go_ns: 0,
                rewound: None,
            });
        }
        if let Some(hook) = on_seized.take() {
            hook();
        }
        // Seized, not interrupted: on a refusal they are detached when the
        // tracer exits, having never stopped.
        verify()?;
        // All seized before any is interrupted: a seized thread runs on as
        // if nothing happened, an interrupted one wakes from its wait.
        for tid in seized.drain(..) {
            // ESRCH: it is exiting; its exit is reported below.
            let _ = sys::interrupt(tid);
        }
        wait_for_stops(tracer, &mut frozen, deadline);
        if new == 0 {
            break;
        }
        // Every thread listed is stopped (or late): none of them can create
        // a thread now, so one more read finds any left.
        if Instant::now() >= deadline && frozen.threads.iter().any(|t| !t.stopped()) {
            break;
        }
    }
    verify()?;
    if frozen.threads.iter().all(|t| !t.stopped()) {
        return Err(if frozen.threads.is_empty() {
            exited_error(pid)
        } else {
            LiveError::new(
                ErrorKind::Timeout,
                format!(
                    "no thread of process {pid} stopped within {} ms (all in uninterruptible sleep?)",
                    timeout.as_millis()
                ),
            )
        });
    }
    Ok(frozen)
}

pub fn exited_error(pid: Pid) -> LiveError {
    LiveError::new(
        ErrorKind::Exited,
        format!("process {pid} exited during the dump"),
    )
}

/// Waits until every thread of `frozen` has stopped or exited, or until
/// `deadline`.
fn wait_for_stops(tracer: &mut Tracer, frozen: &mut Frozen, deadline: Instant) {
    loop {
        let Some(index) = frozen.threads.iter().position(|t| !t.stopped()) else {
            return;
        };
        let tid = frozen.threads[index].tid;
        let Some(event) = tracer.wait(tid, deadline) else {
            return;
        };
        frozen.threads[index].stop_seen_ns = sys::monotonic_ns();
        match event {
            Event::Exited => {
                frozen.threads.remove(index);
                frozen.exited.push(tid);
            }
            Event::Ptrace(e) if e == PTRACE_EVENT_CLONE => {
                // It was creating a thread: the new one is attached and
                // starts stopped. This one counts as stopped (at the event).
                if let Ok(new_tid) = sys::get_event_msg(tid) {
                    let new_tid = new_tid as Pid;
                    if !frozen.threads.iter().any(|t| t.tid == new_tid) {
                        frozen.threads.push(Thread {
                            tid: new_tid,
                            stop: None,
                            state_before: 'R',
                            siginfo: None,
                            stop_seen_ns: 0,
                            let_go_ns: 0,
                            rewound: None,
                        });
                    }
                }
                frozen.threads[index].stop = Some(event);
            }
            Event::Signal(_) => {
                frozen.threads[index].siginfo = sys::get_siginfo(tid).ok();
                frozen.threads[index].stop = Some(event);
            }
            other => frozen.threads[index].stop = Some(other),
        }
    }
}

impl Frozen {
    /// Lets every thread go (with the signal it was about to take); returns
    /// how long they were stopped.
    pub fn resume(&mut self, tracer: &mut Tracer) -> Duration {
        for thread in &mut self.threads {
            if thread.stopped() {
                if let Some((with_eintr, blocked)) = &thread.rewound {
                    // A signal came meanwhile: the EINTR is then its.
                    if crate::restart::deliverable_signal_pending(self.pid, thread.tid, *blocked) {
                        let _ = sys::set_regs(thread.tid, with_eintr);
                    }
                }
                thread.let_go_ns = sys::monotonic_ns();
                let _ = sys::detach(thread.tid, thread.resume_signal());
            } else {
                tracer.detach_when_stopped(thread.tid);
            }
        }
        self.resumed = true;
        self.since.elapsed()
    }

    /// The stopped threads.
    pub fn stopped(&self) -> impl Iterator<Item = &Thread> {
        self.threads.iter().filter(|t| t.stopped())
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if !self.resumed {
            for thread in &self.threads {
                let _ = sys::detach(thread.tid, thread.resume_signal());
            }
        }
    }
}
