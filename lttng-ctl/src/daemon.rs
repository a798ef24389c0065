//! Whether a session daemon this process can talk to is running.

use crate::error::{check_ret, Result};
use crate::lock;
use crate::sys;

/// Returns whether a session daemon is reachable by this process.
///
/// liblttng-ctl looks for the root session daemon when the caller is root or
/// in the `tracing` group, and otherwise for the per-user daemon under
/// `$LTTNG_HOME/.lttng` (`$HOME` when `LTTNG_HOME` is unset).
pub fn session_daemon_alive() -> Result<bool> {
    let _guard = lock::lock();
    // SAFETY: takes no arguments; only reads liblttng-ctl's global
    // connection settings, which the lock protects.
    let ret = unsafe { sys::lttng_session_daemon_alive() };
    let alive = check_ret(ret, || "checking whether a session daemon is alive".into())?;
    Ok(alive == 1)
}
