//! Fuzzes the C API as a C caller would call it: `lttng_trigger()`,
//! `lttng_coredump_trigger_fire()` (and the report accessors),
//! `lttng_trigger_set()`, `lttng_trigger_unset()` and the fire timeout,
//! with arbitrary enum values, handles, session names, socket paths, `opts`
//! bytes and `nb_opt` (never more than the bytes really there: that is the
//! caller's side of the contract). Every call must return 0 or a negative
//! code, never crash, hang or trip the address sanitizer.
//!
//! It must not act on a real session daemon: it refuses to run as root
//! (root reaches the shared root session daemon, whose triggers a fire
//! would run). `scripts/fuzz` runs it as `nobody` with an empty
//! `LTTNG_HOME`, so every call finds no daemon of its own.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lttng_coredump::ffi::api::{
    lttng_coredump_get_fire_timeout_ms, lttng_coredump_set_fire_timeout_ms,
    lttng_coredump_trigger_fire, lttng_trigger, lttng_trigger_set, lttng_trigger_unset,
};
use lttng_coredump::ffi::report::*;
use lttng_coredump::ffi::types::{lttng_handle, RawTriggerAction, RawTriggerType};
use std::ffi::{c_char, c_void, CString};

/// Reads the input front to back; missing bytes read as zero.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        self.0 = rest;
        first
    }

    fn int(&mut self) -> i32 {
        i32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn bytes(&mut self, len: usize) -> &[u8] {
        let len = len.min(self.0.len());
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        taken
    }

    /// Small enum values most of the time (so the valid ones come up), any
    /// int otherwise.
    fn enum_value(&mut self) -> i32 {
        match self.byte() % 4 {
            0 => self.int(),
            _ => i32::from(self.byte() % 4),
        }
    }
}

fn refuse_root() {
    // SAFETY: geteuid cannot fail and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("the c_api fuzz target must not run as root (it would fire in the root session daemon); use scripts/fuzz");
        std::process::abort();
    }
}

fuzz_target!(|data: &[u8]| {
    refuse_root();
    let mut input = Input(data);
    let selector = input.byte();
    let trigger_type = RawTriggerType(input.enum_value());
    let action = RawTriggerAction(input.enum_value());
    // Short deadlines keep runs fast; 0 must be refused.
    let timeout = u32::from(input.byte());
    let ret = lttng_coredump_set_fire_timeout_ms(timeout);
    assert!(ret == 0 || (timeout == 0 && ret < 0), "{ret}");
    assert!(lttng_coredump_get_fire_timeout_ms() >= 1);

    let path_len = usize::from(input.byte());
    let socket_path = (path_len % 3 != 0).then(|| {
        let raw = input.bytes(path_len);
        let until_nul = raw.split(|&b| b == 0).next().unwrap_or_default();
        CString::new(until_nul).expect("no NUL inside")
    });
    let socket_ptr = socket_path
        .as_ref()
        .map_or(std::ptr::null_mut(), |p| p.as_ptr().cast_mut());

    let opts_len = usize::from(input.byte()) * 4 + usize::from(input.byte() % 4);
    let opts: Vec<u8> = input.bytes(opts_len).to_vec();
    let claimed = usize::from(input.byte()) * 4;
    let nb_opt = claimed.min(opts.len());
    let opts_ptr: *const c_void = if input.byte() % 8 == 0 {
        std::ptr::null()
    } else {
        opts.as_ptr().cast()
    };

    match selector % 4 {
        0 => {
            // SAFETY: socket_path is NULL or NUL-terminated; opts is NULL or
            // has nb_opt readable bytes.
            let ret = unsafe { lttng_trigger(trigger_type, socket_ptr, opts_ptr, nb_opt) };
            assert!(ret <= 0, "lttng_trigger returned {ret}");
        }
        1 => {
            let mut report = std::ptr::null_mut();
            // SAFETY: as above; report points to a writable pointer.
            let ret = unsafe {
                lttng_coredump_trigger_fire(trigger_type, socket_ptr, opts_ptr, nb_opt, &mut report)
            };
            assert!(ret <= 0, "lttng_coredump_trigger_fire returned {ret}");
            let index = usize::from(input.byte());
            // SAFETY: report is NULL or a report from the fire, freed once.
            unsafe {
                let count = lttng_coredump_fire_report_get_count(report);
                for i in [index, count, count.saturating_sub(1), usize::MAX] {
                    read_c_str(lttng_coredump_fire_report_get_session(report, i));
                    read_c_str(lttng_coredump_fire_report_get_snapshot_path(report, i));
                    read_c_str(lttng_coredump_fire_report_get_error_message(report, i));
                    read_c_str(lttng_coredump_fire_report_get_trigger_name(report, i));
                    lttng_coredump_fire_report_get_action(report, i);
                    lttng_coredump_fire_report_get_status(report, i);
                    lttng_coredump_fire_report_get_owner_uid(report, i);
                    lttng_coredump_fire_report_get_error_code(report, i);
                    read_c_str(lttng_coredump_fire_report_get_error(report, i));
                }
                lttng_coredump_fire_report_get_error_count(report);
                lttng_coredump_fire_report_destroy(report);
            }
        }
        _ => {
            let handle = (input.byte() % 8 != 0).then(|| {
                // SAFETY: lttng_handle is plain old data; all zeroes is valid.
                let mut handle: lttng_ctl_sys::lttng_handle = unsafe { std::mem::zeroed() };
                let name = input.bytes(handle.session_name.len());
                for (slot, byte) in handle.session_name.iter_mut().zip(name) {
                    *slot = *byte as c_char;
                }
                handle.domain.type_ = lttng_ctl_sys::lttng_domain_type(input.int() as _);
                handle.domain.buf_type = lttng_ctl_sys::lttng_buffer_type(input.int() as _);
                Box::new(handle)
            });
            let handle_ptr: *mut lttng_handle =
                handle.map_or(std::ptr::null_mut(), |h| Box::into_raw(h).cast());
            // SAFETY: the handle is NULL or a complete struct lttng_handle.
            let ret = unsafe {
                if selector % 4 == 2 {
                    lttng_trigger_set(handle_ptr, trigger_type, action, opts_ptr, nb_opt)
                } else {
                    lttng_trigger_unset(handle_ptr, trigger_type, action, opts_ptr, nb_opt)
                }
            };
            assert!(ret <= 0, "set/unset returned {ret}");
            if !handle_ptr.is_null() {
                // SAFETY: made by Box::into_raw above, freed once.
                drop(unsafe { Box::from_raw(handle_ptr.cast::<lttng_ctl_sys::lttng_handle>()) });
            }
        }
    }
});

/// Reads a string the API handed back, as C would (strlen), so the sanitizer
/// sees any read past its end.
fn read_c_str(ptr: *const c_char) {
    if !ptr.is_null() {
        // SAFETY: the API returns NULL or a NUL-terminated string that lives
        // as long as the report.
        let _ = unsafe { std::ffi::CStr::from_ptr(ptr) }.to_bytes().len();
    }
}
