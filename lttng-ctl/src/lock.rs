//! The process-wide lock around liblttng-ctl.
//!
//! liblttng-ctl keeps global connection state (the session daemon socket
//! path, the tracing group, the connected socket) in plain static variables,
//! so two threads calling into it at once race on that state. Every call this
//! crate makes goes through [`lock`].
//!
//! The lock is public for callers that create a child process as a copy of
//! this one (the engine's `child` module): taken across the copy, it
//! ensures no other thread is inside liblttng-ctl at that moment, so the
//! child finds the library's state (and this lock, which the child then
//! releases) consistent.

use std::sync::{Mutex, MutexGuard};

static LTTNG_CTL: Mutex<()> = Mutex::new(());

/// The guard that must be held while calling into liblttng-ctl.
pub type Guard = MutexGuard<'static, ()>;

/// Takes the process-wide liblttng-ctl lock.
///
/// A panic while the lock was held leaves liblttng-ctl's state as valid as
/// after any failed call (each command connects and disconnects on its own),
/// so poisoning is ignored.
pub fn lock() -> Guard {
    LTTNG_CTL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
