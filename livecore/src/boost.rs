//! The dumper's scheduling priority while the process is stopped.
//!
//! While every thread of the process is stopped, the pause is the dumper's
//! own work: stop-and-copy's copy, copy-on-write's ptrace round trips.
//! On a loaded machine that work waits for a CPU like any other, and the
//! process waits with it: bench/live measured a 1 GiB stop-and-copy at 0.24 s
//! with the dumper first in line and 0.86 to 1.03 s without, at a load
//! average of 13 on 2 CPUs, for the same copying (BENCHMARKS.md, "Live
//! cores: where the pause goes"). So, where the caller may (root, or
//! `CAP_SYS_NICE`, or an `RLIMIT_NICE` that allows it), the dumping child
//! raises its priority for the stop alone and lowers it again as soon as
//! the threads are let go:
//!
//! - its threads' nice value ([`STOP_NICE`]): what counts among the tasks of
//!   one scheduling group (a cgroup with the cpu controller, or one
//!   autogroup);
//! - for stop-and-copy (whose pause is the dumper's copying), where the
//!   kernel groups tasks by session (`kernel.sched_autogroup_enabled`,
//!   tasks outside any cpu cgroup), the dumping child first makes a session
//!   of its own (`setsid`, so that the caller's session keeps its
//!   priority) and gives that group the same nice value: across groups,
//!   the nice value of a task counts for nothing, its group's does.
//!
//! The dumping child dies with its caller (`PR_SET_PDEATHSIG`), so leaving
//! the caller's session changes nothing of who ends it. Nothing of the
//! target's priority is changed. A caller who may not raise it gets the
//! pause as before; the report says what was used (`stop_nice`).

use crate::sys;

/// The nice value of the dumper during the stop: about nine times the CPU
/// share of a task (or group) at nice 0, without taking a CPU from the
/// kernel's own threads as a real-time policy would.
pub const STOP_NICE: i32 = -10;

/// A raised priority, lowered by [`Boost::lower`] (or when the dumping
/// child exits).
pub struct Boost {
    /// The thread's nice value before.
    before: i32,
    /// The session's group was raised too.
    group: bool,
}

impl Boost {
    /// Raises the calling thread's priority (threads it creates inherit
    /// it) and, with autogroups and `group`, its own group's; `None` when
    /// not allowed.
    pub fn raise(group: bool) -> Option<Boost> {
        let before = sys::thread_nice();
        if before <= STOP_NICE || sys::set_thread_nice(STOP_NICE).is_err() {
            return None;
        }
        let group = group
            && sys::autogroups_in_effect()
            && sys::new_session().is_ok()
            && sys::set_autogroup_nice(STOP_NICE).is_ok();
        Some(Boost { before, group })
    }

    /// The nice value the dumper runs at.
    pub fn nice(&self) -> i32 {
        STOP_NICE
    }

    /// Back to the priority before.
    pub fn lower(self) {
        let _ = sys::set_thread_nice(self.before);
        if self.group {
            let _ = sys::set_autogroup_nice(0);
        }
    }
}
