//! Which session daemon this process talks to: whether one is reachable,
//! where liblttng-ctl looks for the root one, and how to make it use the
//! per-user one only.

use crate::error::{check_ret, Error, ErrorCode, Result};
use crate::lock;
use crate::sys;
use std::ffi::CStr;

macro_rules! root_run_dir {
    () => {
        "/var/run/lttng"
    };
}
macro_rules! client_socket {
    () => {
        "client-lttng-sessiond"
    };
}

/// The root session daemon's run directory (lttng-tools'
/// `DEFAULT_LTTNG_RUNDIR`).
pub const ROOT_RUN_DIR: &str = root_run_dir!();

/// The client socket every session daemon creates in its run directory
/// (`/var/run/lttng` for root, `$LTTNG_HOME/.lttng` for a user).
pub const CLIENT_SOCKET: &str = client_socket!();

/// The root session daemon's client socket, where liblttng-ctl connects
/// root and the members of the tracing group (`DEFAULT_GLOBAL_CLIENT_UNIX_SOCK`).
pub const ROOT_CLIENT_SOCKET: &str = concat!(root_run_dir!(), "/", client_socket!());

/// The group liblttng-ctl (2.13, by default) checks to let a non-root user
/// reach the root session daemon.
pub const TRACING_GROUP: &str = "tracing";

/// A tracing-group name that cannot exist (`:` separates fields in
/// `/etc/group`). Telling liblttng-ctl that this is the tracing group makes
/// it skip the root session daemon and use the per-user one.
const NO_TRACING_GROUP: &CStr = c"lttng-coredump:no-such-group";

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

fn os_error(context: &str) -> Error {
    let err = std::io::Error::last_os_error();
    Error::with_message(ErrorCode::Fatal, err.to_string(), context)
}

/// Makes liblttng-ctl (2.13) use the per-user session daemon of this
/// (non-root) process, in `$LTTNG_HOME/.lttng`, and never the root one, for
/// the rest of the process's life. Meant for a child process that has just
/// become another user (see [`crate::isolate::run_isolated_after`]).
///
/// This relies on liblttng-ctl's internals (`set_session_daemon_path()` in
/// lttng-ctl.c, 2.13), not on its API; the tests of this module check each
/// point against the installed library:
/// - liblttng-ctl connects a non-root member of the tracing group to the
///   root daemon; naming a tracing group that cannot exist stops that.
/// - But when the tracing group does not exist, it first retries the socket
///   path of the *previous* call, kept in a static buffer. In a child forked
///   from a root process that used liblttng-ctl, that is still the root
///   daemon's, which the process may still reach through a group it keeps.
/// - So the stale path is replaced by the per-user one with one call made
///   while no file descriptor can be opened (`RLIMIT_NOFILE` at 0): the
///   connection to the old path fails, and the library falls back to
///   `$LTTNG_HOME/.lttng`, which it keeps in the buffer for the next calls.
/// - That failing call makes liblttng-ctl print `socket: Too many open
///   files` on stderr; the private-but-exported `lttng_opt_quiet`
///   (`lttng-ctl-sys`) silences it meanwhile.
pub fn use_per_user_daemon_only() -> Result<()> {
    let _guard = lock::lock();
    // SAFETY: the string is NUL-terminated; liblttng-ctl copies it.
    if unsafe { sys::lttng_set_tracing_group(NO_TRACING_GROUP.as_ptr()) } != 0 {
        return Err(Error::new(ErrorCode::NoMemory, "setting the tracing group"));
    }
    // SAFETY: valid out-pointer.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(os_error("reading the open-file limit"));
    }
    let no_files = libc::rlimit {
        rlim_cur: 0,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: only this process's limits and liblttng-ctl's verbosity
    // change, and both are restored below; the lock is held, so nothing
    // else calls into liblttng-ctl meanwhile.
    unsafe {
        let quiet = sys::lttng_opt_quiet;
        sys::lttng_opt_quiet = 1;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &no_files) != 0 {
            sys::lttng_opt_quiet = quiet;
            return Err(os_error("lowering the open-file limit"));
        }
        // The answer is "not alive" whatever runs: what matters is the path
        // the library computes on the way.
        let _ = sys::lttng_session_daemon_alive();
        let restored = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        sys::lttng_opt_quiet = quiet;
        if restored != 0 {
            return Err(os_error("restoring the open-file limit"));
        }
    }
    Ok(())
}
