//! The exported functions of the triggers RFC (`lttng_trigger_set()`,
//! `lttng_trigger()`), what users need beyond it (`lttng_trigger_unset()`,
//! a fire that reports what it did, a settable deadline), all over the
//! Rust engine.
//!
//! Setting, unsetting and firing all talk to the session daemon from a
//! short-lived child process under the fire deadline, so a session daemon
//! that hangs never hangs the caller.

use super::boundary::{array_str, boundary, invalid, try_ref, try_str};
use super::report::FireReportHandle;
use super::types::{
    lttng_handle, lttng_trigger_onanycoredump, RawTriggerAction, RawTriggerType, TriggerAction,
};
use lttng_coredump_engine::identity::run_json;
use lttng_coredump_engine::{
    fire_on_any_core_dump, set_trigger, unset_trigger, ActionKind, ActionPhase, CrashInfo,
    DaemonTarget, FireOptions, FireReport,
};
use lttng_ctl::{sys, Error, ErrorCode};
use std::ffi::{c_char, c_int, c_uint, c_void};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The default deadline of a fire (and of set/unset), in milliseconds.
pub const DEFAULT_FIRE_TIMEOUT_MS: u32 = 5000;

static FIRE_TIMEOUT_MS: AtomicU32 = AtomicU32::new(DEFAULT_FIRE_TIMEOUT_MS);

fn fire_deadline() -> Duration {
    Duration::from_millis(u64::from(FIRE_TIMEOUT_MS.load(Ordering::Relaxed)))
}

/// Sets how long `lttng_trigger()`, `lttng_coredump_trigger_fire()`,
/// `lttng_trigger_set()` and `lttng_trigger_unset()` may wait for a session
/// daemon, in milliseconds, for the whole process (default 5000). A daemon
/// that has not answered by then is given up on: the call returns
/// `-LTTNG_ERR_COMMAND_CANCELLED`. 0 is refused (`-LTTNG_ERR_INVALID`).
#[no_mangle]
pub extern "C" fn lttng_coredump_set_fire_timeout_ms(timeout_ms: c_uint) -> c_int {
    boundary(|| {
        if timeout_ms == 0 {
            return Err(invalid(
                "the timeout must be at least 1 ms",
                "setting the fire timeout",
            ));
        }
        FIRE_TIMEOUT_MS.store(timeout_ms, Ordering::Relaxed);
        Ok(0)
    })
}

/// The current fire deadline in milliseconds.
#[no_mangle]
pub extern "C" fn lttng_coredump_get_fire_timeout_ms() -> c_uint {
    FIRE_TIMEOUT_MS.load(Ordering::Relaxed)
}

fn validate_type(raw: RawTriggerType) -> Result<(), Error> {
    raw.validate().map(drop).ok_or_else(|| {
        invalid(
            format!("{} is not an enum lttng_trigger_type value", raw.0),
            "checking the trigger type",
        )
    })
}

fn validate_action(raw: RawTriggerAction) -> Result<ActionKind, Error> {
    match raw.validate() {
        Some(TriggerAction::LTTNG_TRIGGER_ACTION_SNAPSHOT) => Ok(ActionKind::Snapshot),
        Some(TriggerAction::LTTNG_TRIGGER_ACTION_STOP) => Ok(ActionKind::Stop),
        None => Err(invalid(
            format!("{} is not an enum lttng_trigger_action value", raw.0),
            "checking the trigger action",
        )),
    }
}

/// The session a `struct lttng_handle` names.
///
/// # Safety
/// A non-NULL `handle` must point to a `struct lttng_handle` (as
/// `lttng_create_handle()` returns).
unsafe fn handle_session(handle: *mut lttng_handle) -> Result<String, Error> {
    // SAFETY: the caller's contract; lttng-ctl-sys has the real layout of
    // liblttng-ctl's struct, which the opaque type stands for.
    let handle = unsafe { try_ref(handle.cast::<sys::lttng_handle>().cast_const(), "handle") }?;
    let session = array_str(&handle.session_name, "the handle's session name")?;
    if session.is_empty() {
        return Err(invalid("the handle names no session", "reading the handle"));
    }
    Ok(session)
}

/// Runs a set/unset in an isolated child under the deadline.
fn in_child(work: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
    let result: Result<(), (u32, String)> = run_json(fire_deadline(), None, || {
        work().map_err(|err| (err.raw_code(), err.to_string()))
    })?;
    result.map_err(|(code, message)| {
        Error::with_message(ErrorCode::from_raw(code), message, "in the isolated child")
    })
}

/// What `lttng_trigger_set()` and `lttng_trigger_unset()` share: the
/// argument checks, then `change` on the handle's session in an isolated
/// child, inside the panic boundary.
///
/// # Safety
/// `handle` is NULL or comes from `lttng_create_handle()`.
unsafe fn change_trigger(
    handle: *mut lttng_handle,
    r#type: RawTriggerType,
    action: RawTriggerAction,
    change: impl FnOnce(&str, ActionKind) -> Result<(), Error> + std::panic::UnwindSafe,
) -> c_int {
    boundary(|| {
        // SAFETY: per this function's contract.
        let session = unsafe { handle_session(handle) }?;
        validate_type(r#type)?;
        let action = validate_action(action)?;
        in_child(|| change(&session, action))?;
        Ok(0)
    })
}

/// Sets a trigger on the session of `handle`: for
/// `LTTNG_TRIGGER_TYPE_ONANYCOREDUMP`, the session is snapshotted
/// (`LTTNG_TRIGGER_ACTION_SNAPSHOT`) or stopped (`LTTNG_TRIGGER_ACTION_STOP`)
/// when any process dumps core and `lttng_trigger()` fires. The trigger is
/// an LTTng trigger owned by the caller (`lttng list-triggers` shows it);
/// setting it again succeeds. `opts` and `nb_opt` are ignored, as in the
/// RFC.
///
/// Returns 0 on success or a negative `LTTNG_ERR_*` code
/// (`-LTTNG_ERR_SESS_NOT_FOUND` when the handle's session does not exist).
///
/// # Safety
/// `handle` is NULL or comes from `lttng_create_handle()`.
#[no_mangle]
pub unsafe extern "C" fn lttng_trigger_set(
    handle: *mut lttng_handle,
    r#type: RawTriggerType,
    action: RawTriggerAction,
    opts: *const c_void,
    nb_opt: usize,
) -> c_int {
    let _ = (opts, nb_opt);
    // SAFETY: per the contract.
    unsafe {
        change_trigger(handle, r#type, action, |session, action| {
            set_trigger(session, action).map(drop)
        })
    }
}

/// Removes the trigger `lttng_trigger_set()` set with the same arguments.
/// Returns 0, `-LTTNG_ERR_TRIGGER_NOT_FOUND` when there is none, or another
/// negative `LTTNG_ERR_*` code.
///
/// # Safety
/// `handle` is NULL or comes from `lttng_create_handle()`.
#[no_mangle]
pub unsafe extern "C" fn lttng_trigger_unset(
    handle: *mut lttng_handle,
    r#type: RawTriggerType,
    action: RawTriggerAction,
    opts: *const c_void,
    nb_opt: usize,
) -> c_int {
    let _ = (opts, nb_opt);
    // SAFETY: per the contract.
    unsafe { change_trigger(handle, r#type, action, unset_trigger) }
}

/// The crash and the target daemon of a fire, from its C arguments.
///
/// # Safety
/// `socket_path` is NULL or a NUL-terminated string; `opts` is NULL or
/// points to at least `nb_opt` readable bytes.
unsafe fn fire_arguments(
    r#type: RawTriggerType,
    socket_path: *const c_char,
    opts: *const c_void,
    nb_opt: usize,
) -> Result<(CrashInfo, DaemonTarget), Error> {
    validate_type(r#type)?;
    if opts.is_null() {
        return Err(invalid(
            "opts is NULL; it must point to a struct lttng_trigger_onanycoredump",
            "reading the crash",
        ));
    }
    let needed = std::mem::size_of::<lttng_trigger_onanycoredump>();
    if nb_opt < needed {
        return Err(invalid(
            format!("nb_opt is {nb_opt}; sizeof(struct lttng_trigger_onanycoredump) is {needed}"),
            "reading the crash",
        ));
    }
    // SAFETY: `opts` has at least `needed` readable bytes (contract and the
    // check above); any bit pattern is a valid struct; no alignment assumed.
    let fields = unsafe { opts.cast::<lttng_trigger_onanycoredump>().read_unaligned() };
    let crash = CrashInfo {
        pid: fields.pid,
        uid: fields.uid,
        gid: fields.gid,
        exec_name: array_str(&fields.exec_name, "exec_name")?,
        hostname: array_str(&fields.hostname, "hostname")?,
        time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };
    let daemon = if socket_path.is_null() {
        DaemonTarget::Default
    } else {
        // SAFETY: non-NULL and NUL-terminated per the contract.
        let path = unsafe { try_str(socket_path, "socket_path") }?;
        if path.is_empty() {
            return Err(invalid("socket_path is empty", "reading the socket path"));
        }
        DaemonTarget::RunDir(PathBuf::from(path))
    };
    Ok((crash, daemon))
}

/// The return value for a fire: 0 when everything it tried succeeded, else
/// the code of the first error (errors of the fire as a whole first).
fn fire_code(report: &FireReport) -> c_int {
    report
        .errors
        .iter()
        .chain(report.outcomes.iter().filter_map(|o| o.error.as_ref()))
        .map(|e| -e.code.abs())
        .next()
        .unwrap_or(0)
}

fn fire(crash: &CrashInfo, daemon: DaemonTarget) -> FireReport {
    fire_on_any_core_dump(
        crash,
        &FireOptions {
            deadline: fire_deadline(),
            daemon,
            extra_sessions: Vec::new(),
            fallback_to_active_snapshot_sessions: false,
            phase: ActionPhase::All,
        },
    )
}

/// Fires a trigger of the given type. For `LTTNG_TRIGGER_TYPE_ONANYCOREDUMP`,
/// `opts` points to the crash's `struct lttng_trigger_onanycoredump` and
/// `nb_opt` is its size: every OnAnyCoreDump trigger of the session daemon
/// is run now, in this call, each with its owner's rights, and snapshots are
/// named `<exec_name>-<pid>-<time>-<session>`.
///
/// `socket_path` NULL: the session daemon the caller reaches by default.
/// Otherwise a session daemon's run directory or a socket in it (e.g.
/// `/home/auser/.lttng/notify-lttng-sessiond`): `/var/run/lttng` is the
/// root daemon; for a user's directory, root (or that user) acts in that
/// user's daemon as that user, and only the triggers of that user are run
/// there (others it lists are reported as refused). A user's directory is
/// only accepted when the absolute path reaches it without a symbolic link
/// and without `..`, through directories owned by root or that user and
/// writable by nobody else, and it is named `.lttng`: otherwise
/// `-LTTNG_ERR_EPERM`, so that whoever controls a directory on the path
/// cannot choose whom the caller acts as. A path that names no daemon is
/// `-LTTNG_ERR_NO_SESSIOND`.
///
/// Returns 0 when every action succeeded (or there was none), else a
/// negative `LTTNG_ERR_*` code: `-LTTNG_ERR_COMMAND_CANCELLED` when the
/// daemon did not answer within the deadline. Use
/// `lttng_coredump_trigger_fire()` to know what was done.
///
/// # Safety
/// `socket_path` is NULL or a NUL-terminated string; `opts` is NULL or
/// points to at least `nb_opt` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn lttng_trigger(
    r#type: RawTriggerType,
    socket_path: *mut c_char,
    opts: *const c_void,
    nb_opt: usize,
) -> c_int {
    boundary(|| {
        // SAFETY: per the contract.
        let (crash, daemon) = unsafe { fire_arguments(r#type, socket_path, opts, nb_opt) }?;
        Ok(fire_code(&fire(&crash, daemon)))
    })
}

/// `lttng_trigger()` that also hands back what the fire did: on return,
/// `*report` is a report to read with the `lttng_coredump_fire_report_*()`
/// accessors and free with `lttng_coredump_fire_report_destroy()`, or NULL
/// when the arguments were refused. Returns as `lttng_trigger()` does.
///
/// # Safety
/// As `lttng_trigger()`; `report` points to a writable pointer.
#[no_mangle]
pub unsafe extern "C" fn lttng_coredump_trigger_fire(
    r#type: RawTriggerType,
    socket_path: *const c_char,
    opts: *const c_void,
    nb_opt: usize,
    report: *mut *mut FireReportHandle,
) -> c_int {
    boundary(|| {
        if report.is_null() {
            return Err(invalid("report is NULL", "firing a trigger"));
        }
        // SAFETY: non-NULL and writable per the contract.
        unsafe { report.write(std::ptr::null_mut()) };
        // SAFETY: per the contract.
        let (crash, daemon) = unsafe { fire_arguments(r#type, socket_path, opts, nb_opt) }?;
        let done = fire(&crash, daemon);
        let code = fire_code(&done);
        let handle = Box::into_raw(Box::new(FireReportHandle::new(&done)));
        // SAFETY: as above.
        unsafe { report.write(handle) };
        Ok(code)
    })
}
