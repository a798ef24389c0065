//! `struct lttng_coredump_fire_report`: what a fire did, for C callers, with
//! accessors, so that nobody has to parse logs.
//!
//! The report is opaque to C. Strings it returns belong to it and stay
//! valid until `lttng_coredump_fire_report_destroy()`.

use super::boundary::boundary_or;
use super::types::TriggerAction;
use lttng_coredump_engine::{ActionKind, FireReport};
use std::ffi::{c_char, c_int, CString};
use std::ptr;

/// One action of a fire, with its strings ready for C.
struct Entry {
    session: CString,
    trigger_name: Option<CString>,
    owner_uid: Option<u32>,
    action: TriggerAction,
    snapshot_path: Option<CString>,
    status: c_int,
    message: Option<CString>,
}

/// The report of one fire (opaque to C).
pub struct FireReportHandle {
    entries: Vec<Entry>,
    errors: Vec<(c_int, CString)>,
}

/// A C string of `text`; an interior NUL (impossible from LTTng, but the
/// text is not ours) becomes U+FFFD rather than cutting it short.
fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', "\u{FFFD}")).unwrap_or_default()
}

impl FireReportHandle {
    pub fn new(report: &FireReport) -> FireReportHandle {
        FireReportHandle {
            entries: report
                .outcomes
                .iter()
                .map(|o| Entry {
                    session: c_string(&o.session),
                    trigger_name: o.trigger_name.as_deref().map(c_string),
                    owner_uid: o.owner_uid,
                    action: match o.action {
                        ActionKind::Snapshot => TriggerAction::LTTNG_TRIGGER_ACTION_SNAPSHOT,
                        ActionKind::Stop => TriggerAction::LTTNG_TRIGGER_ACTION_STOP,
                    },
                    snapshot_path: o.snapshot_path.as_deref().map(c_string),
                    status: o.error.as_ref().map_or(0, |e| -e.code.abs()),
                    message: o.error.as_ref().map(|e| c_string(&e.message)),
                })
                .collect(),
            errors: report
                .errors
                .iter()
                .map(|e| (-e.code.abs(), c_string(&e.message)))
                .collect(),
        }
    }
}

fn opt_ptr(s: Option<&CString>) -> *const c_char {
    s.map_or(ptr::null(), |s| s.as_ptr())
}

/// The entry `index` of `report`, if both are valid.
///
/// # Safety
/// A non-NULL `report` must come from `lttng_coredump_trigger_fire()` and
/// not be destroyed.
unsafe fn entry<'a>(report: *const FireReportHandle, index: usize) -> Option<&'a Entry> {
    // SAFETY: per the caller's contract.
    unsafe { report.as_ref() }?.entries.get(index)
}

/// How many actions the fire ran (or tried to): one entry per session
/// snapshotted or stopped. 0 for a NULL report.
///
/// # Safety
/// `report` is NULL or a live report.
#[no_mangle]
pub unsafe extern "C" fn lttng_coredump_fire_report_get_count(
    report: *const FireReportHandle,
) -> usize {
    boundary_or(0, || {
        // SAFETY: per the contract.
        unsafe { report.as_ref() }.map_or(0, |r| r.entries.len())
    })
}

/// The session of entry `index`; NULL when out of range.
///
/// # Safety
/// `report` is NULL or a live report.
#[no_mangle]
pub unsafe extern "C" fn lttng_coredump_fire_report_get_session(
    report: *const FireReportHandle,
    index: usize,
) -> *const c_char {
    boundary_or(ptr::null(), || {
        // SAFETY: per the contract.
        unsafe { entry(report, index) }.map_or(ptr::null(), |e| e.session.as_ptr())
    })
}

/// The action of entry `index` (an `enum lttng_trigger_action` value), or
/// `-LTTNG_ERR_INVALID` when out of range.
///
/// # Safety
/// `report` is NULL or a live report.
#[no_mangle]
pub unsafe extern "C" fn lttng_coredump_fire_report_get_action(
    report: *const FireReportHandle,
    index: usize,
) -> c_int {
    let invalid = -(lttng_ctl::ErrorCode::Invalid.raw() as c_int);
    boundary_or(invalid, || {
        // SAFETY: per the contract.
        unsafe { entry(report, index) }.map_or(invalid, |e| e.action as c_int)
    })
}

/// Where the snapshot of entry `index` went (its directory, or a relay
/// URL); NULL for a stop, a failed snapshot, or out of range.
///
/// # Safety
/// `report` is NULL or a live report.
#[no_mangle]
pub unsafe extern "C" fn lttng_coredump_fire_report_get_snapshot_path(
    report: *const FireReportHandle,
    index: usize,
) -> *const c_char {
    boundary_or(ptr::null(), || {
        // SAFETY: per the contract.
        unsafe { entry(report, index) }.map_or(ptr::null(), |e| opt_ptr(e.snapshot_path.as_ref()))
    })
}

/// 0 when entry `index` succeeded, else its negative `LTTNG_ERR_*` code
/// (`-LTTNG_ERR_INVALID` when out of range).
///
/// # Safety
/// `report` is NULL or a live report.
#[no_mangle]
pub unsafe extern "C" fn lttng_coredump_fire_report_get_status(
    report: *const FireReportHandle,
    index: usize,
) -> c_int {
    let invalid = -(lttng_ctl::ErrorCode::Invalid.raw() as c_int);
    boundary_or(invalid, || {
        // SAFETY: per the contract.
        unsafe { entry(report, index) }.map_or(invalid, |e| e.status)
    })
}

/// Why entry `index` failed, in words (what was attempted, on what, as
/// whom); NULL when it succeeded or is out of range.
///
/// # Safety
/// `report` is NULL or a live report.
#[no_mangle]
pub unsafe extern "C" fn lttng_coredump_fire_report_get_error_message(
    report: *const FireReportHandle,
    index: usize,
) -> *const c_char {
    boundary_or(ptr::null(), || {
        // SAFETY: per the contract.
        unsafe { entry(report, index) }.map_or(ptr::null(), |e| opt_ptr(e.message.as_ref()))
    })
}

/// The name of the trigger behind entry `index`; NULL when out of range.
///
/// # Safety
/// `report` is NULL or a live report.
#[no_mangle]
pub unsafe extern "C" fn lttng_coredump_fire_report_get_trigger_name(
    report: *const FireReportHandle,
    index: usize,
) -> *const c_char {
    boundary_or(ptr::null(), || {
        // SAFETY: per the contract.
        unsafe { entry(report, index) }.map_or(ptr::null(), |e| opt_ptr(e.trigger_name.as_ref()))
    })
}

/// The uid owning the trigger behind entry `index` (whose rights it acted
/// with); -1 when out of range.
///
/// # Safety
/// `report` is NULL or a live report.
#[no_mangle]
pub unsafe extern "C" fn lttng_coredump_fire_report_get_owner_uid(
    report: *const FireReportHandle,
    index: usize,
) -> i64 {
    boundary_or(-1, || {
        // SAFETY: per the contract.
        unsafe { entry(report, index) }
            .and_then(|e| e.owner_uid)
            .map_or(-1, i64::from)
    })
}

/// How many errors the fire met that belong to no single action (no
/// session daemon, a daemon that did not answer in time, an action it does
/// not run). 0 for a NULL report.
///
/// # Safety
/// `report` is NULL or a live report.
#[no_mangle]
pub unsafe extern "C" fn lttng_coredump_fire_report_get_error_count(
    report: *const FireReportHandle,
) -> usize {
    boundary_or(0, || {
        // SAFETY: per the contract.
        unsafe { report.as_ref() }.map_or(0, |r| r.errors.len())
    })
}

/// The negative `LTTNG_ERR_*` code of error `index` (`-LTTNG_ERR_INVALID`
/// when out of range).
///
/// # Safety
/// `report` is NULL or a live report.
#[no_mangle]
pub unsafe extern "C" fn lttng_coredump_fire_report_get_error_code(
    report: *const FireReportHandle,
    index: usize,
) -> c_int {
    let invalid = -(lttng_ctl::ErrorCode::Invalid.raw() as c_int);
    boundary_or(invalid, || {
        // SAFETY: per the contract.
        unsafe { report.as_ref() }
            .and_then(|r| r.errors.get(index))
            .map_or(invalid, |(code, _)| *code)
    })
}

/// Error `index` in words; NULL when out of range.
///
/// # Safety
/// `report` is NULL or a live report.
#[no_mangle]
pub unsafe extern "C" fn lttng_coredump_fire_report_get_error(
    report: *const FireReportHandle,
    index: usize,
) -> *const c_char {
    boundary_or(ptr::null(), || {
        // SAFETY: per the contract.
        unsafe { report.as_ref() }
            .and_then(|r| r.errors.get(index))
            .map_or(ptr::null(), |(_, message)| message.as_ptr())
    })
}

/// Frees a report (NULL is allowed and does nothing).
///
/// # Safety
/// `report` is NULL or a live report, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn lttng_coredump_fire_report_destroy(report: *mut FireReportHandle) {
    boundary_or((), || {
        if !report.is_null() {
            // SAFETY: it came from Box::into_raw in lttng_coredump_trigger_fire
            // and is freed once, per the contract.
            drop(unsafe { Box::from_raw(report) });
        }
    })
}
