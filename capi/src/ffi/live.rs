//! `lttng_coredump_live()`: the core of a running process, written to a
//! descriptor without stopping the process for long, with the snapshots of
//! the OnAnyCoreDump triggers taken while its threads are stopped, over the
//! Rust library `lttng_coredump_livecore` (see its documentation for how).
//! For daemons and watchdogs that want the state of a process now, and the
//! events that led there, without a crash.

// The C-facing enum keeps its C names, as the header prints them.
#![allow(non_camel_case_types)]

use super::api::lttng_coredump_get_fire_timeout_ms;
use super::boundary::{boundary, invalid};
use lttng_coredump_livecore::{dump, ErrorKind, Method, Options, Output, SnapshotPlan};
use lttng_ctl::{Error, ErrorCode};
use std::ffi::{c_int, c_uint};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

/// The flags of `lttng_coredump_live()`, OR-ed together
/// (`enum lttng_coredump_live_flag`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveFlag {
    /// Copy the memory while every thread is stopped (the pause grows with
    /// the memory) instead of the default pre-copy (or copy-on-write copy).
    LTTNG_COREDUMP_LIVE_STOP_AND_COPY = 1,
    /// Only the copy-on-write method: fail (`-LTTNG_ERR_NOT_SUPPORTED`)
    /// where it cannot be used, instead of stopping and copying.
    LTTNG_COREDUMP_LIVE_COPY_ON_WRITE = 2,
    /// Compress the core with zstd (level 3).
    LTTNG_COREDUMP_LIVE_ZSTD = 4,
    /// Take no LTTng snapshot.
    LTTNG_COREDUMP_LIVE_NO_SNAPSHOT = 8,
}

const KNOWN_FLAGS: c_uint = 1 | 2 | 4 | 8;

fn has(flags: c_uint, flag: LiveFlag) -> bool {
    flags & flag as c_uint != 0
}

/// The options `flags` ask for, or why they are refused.
fn options(flags: c_uint) -> Result<Options, Error> {
    if flags & !KNOWN_FLAGS != 0 {
        return Err(invalid(
            format!("unknown flags {:#x}", flags & !KNOWN_FLAGS),
            "reading the flags of lttng_coredump_live()",
        ));
    }
    let stop = has(flags, LiveFlag::LTTNG_COREDUMP_LIVE_STOP_AND_COPY);
    let cow = has(flags, LiveFlag::LTTNG_COREDUMP_LIVE_COPY_ON_WRITE);
    if stop && cow {
        return Err(invalid(
            "LTTNG_COREDUMP_LIVE_STOP_AND_COPY and LTTNG_COREDUMP_LIVE_COPY_ON_WRITE exclude each other",
            "reading the flags of lttng_coredump_live()",
        ));
    }
    Ok(Options {
        method: match (stop, cow) {
            (true, _) => Some(Method::StopAndCopy),
            (_, true) => Some(Method::CopyOnWrite),
            _ => None,
        },
        zstd_level: has(flags, LiveFlag::LTTNG_COREDUMP_LIVE_ZSTD).then_some(3),
        snapshots: (!has(flags, LiveFlag::LTTNG_COREDUMP_LIVE_NO_SNAPSHOT)).then(|| SnapshotPlan {
            deadline: Duration::from_millis(u64::from(lttng_coredump_get_fire_timeout_ms())),
            ..SnapshotPlan::default()
        }),
        ..Options::default()
    })
}

/// The LTTng error a live dump's failure is.
fn live_error(err: lttng_coredump_livecore::LiveError) -> Error {
    let code = match err.kind {
        ErrorKind::PermissionDenied => ErrorCode::PermissionDenied,
        ErrorKind::Timeout => ErrorCode::Cancelled,
        _ => ErrorCode::from_raw(err.lttng_code()),
    };
    Error::with_message(code, err.message, "dumping a live process")
}

/// Writes the ELF core of the running process `pid` to `fd`, stopping the
/// process only for as long as it takes to copy what it wrote since its
/// memory was copied while it ran (pre-copy; where that cannot be used, to
/// make a copy-on-write copy of it; with
/// `LTTNG_COREDUMP_LIVE_STOP_AND_COPY`, to copy its memory), and
/// fires the OnAnyCoreDump triggers (snapshot actions) while its threads
/// are stopped, so that the snapshots end where the core begins: in the
/// root session daemon (root, or a member of the `tracing` group) and in
/// the process owner's own daemon (as the owner), as for a crash. The process is
/// not signalled, its parent sees nothing, and it resumes even if the
/// caller dies during the call. gdb reads the core as a kernel core.
///
/// `fd` is a regular file (the core is written from its current position,
/// the file cut there first, zero pages as holes) or a pipe or socket; it
/// stays the caller's. `flags` is 0 or `enum lttng_coredump_live_flag`
/// values OR-ed together.
///
/// The caller must be root, or the process's owner where the kernel lets
/// them trace it (not a set-uid or non-dumpable program). The work is done
/// by a child process forked for the call and reaped before it returns.
///
/// Returns 0, or a negative `LTTNG_ERR_*` code: `-LTTNG_ERR_EPERM` (another
/// user's process, a set-uid or non-dumpable one), `-LTTNG_ERR_INVALID` (a
/// pid that names no process, a zombie, a kernel thread, a bad `fd` or
/// flag), `-LTTNG_ERR_NOT_SUPPORTED`, `-LTTNG_ERR_FATAL` (the process
/// exited during the dump, the core could not be written). A snapshot that
/// fails does not fail the call.
#[no_mangle]
pub extern "C" fn lttng_coredump_live(pid: libc::pid_t, fd: c_int, flags: c_uint) -> c_int {
    boundary(|| {
        let options = options(flags)?;
        if fd < 0 {
            return Err(invalid(
                format!("fd {fd} is not a descriptor"),
                "lttng_coredump_live()",
            ));
        }
        // SAFETY: `fd` is only borrowed to be duplicated; a descriptor that
        // is not open makes the duplication fail.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let own: OwnedFd = borrowed
            .try_clone_to_owned()
            .map_err(|e| invalid(format!("fd {fd}: {e}"), "lttng_coredump_live()"))?;
        dump(pid, Output::Fd(own), &options).map_err(live_error)?;
        Ok(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_checked() {
        assert!(options(0).is_ok_and(|o| o.method.is_none() && o.snapshots.is_some()));
        assert!(options(1).is_ok_and(|o| o.method == Some(Method::StopAndCopy)));
        assert!(
            options(2 | 4 | 8).is_ok_and(|o| o.method == Some(Method::CopyOnWrite)
                && o.zstd_level == Some(3)
                && o.snapshots.is_none())
        );
        assert_eq!(options(3).unwrap_err().code(), ErrorCode::Invalid);
        assert_eq!(options(16).unwrap_err().code(), ErrorCode::Invalid);
    }
}
