//! The C types of the triggers RFC, laid out exactly as the RFC has them,
//! and the integer newtypes through which enum values arrive from C.
//!
//! A C caller can pass any integer where an enum is expected, so exported
//! functions never take a Rust enum (an out-of-range value would be
//! undefined behaviour): they take [`RawTriggerType`] / [`RawTriggerAction`]
//! and validate them. cbindgen prints those as `enum lttng_trigger_type` /
//! `enum lttng_trigger_action` (see `cbindgen.toml`), and prints the enums
//! below, which exist only for the header.

// The C-facing items keep the RFC's C names, so that the Rust source reads
// like the header it generates.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int};

/// `NAME_MAX` of `<limits.h>` (the header includes it rather than
/// redefining it).
pub const NAME_MAX: usize = 255;

/// The size of `hostname`: 255 bytes, "RFC 1035 specify this max size".
pub const HOSTNAME_SIZE: usize = 255;

/// The kinds of trigger (`enum lttng_trigger_type`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerType {
    /// Fired by a core_pattern helper when any process dumps core.
    LTTNG_TRIGGER_TYPE_ONANYCOREDUMP = 1,
}

/// What a trigger does to its session (`enum lttng_trigger_action`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerAction {
    /// Record a snapshot of the session.
    LTTNG_TRIGGER_ACTION_SNAPSHOT = 1,
    /// Stop the session.
    LTTNG_TRIGGER_ACTION_STOP = 2,
}

/// An `enum lttng_trigger_type` as received from C: any int.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawTriggerType(pub c_int);

/// An `enum lttng_trigger_action` as received from C: any int.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawTriggerAction(pub c_int);

impl RawTriggerType {
    pub fn validate(self) -> Option<TriggerType> {
        (self.0 == TriggerType::LTTNG_TRIGGER_TYPE_ONANYCOREDUMP as c_int)
            .then_some(TriggerType::LTTNG_TRIGGER_TYPE_ONANYCOREDUMP)
    }
}

impl RawTriggerAction {
    pub fn validate(self) -> Option<TriggerAction> {
        match self.0 {
            1 => Some(TriggerAction::LTTNG_TRIGGER_ACTION_SNAPSHOT),
            2 => Some(TriggerAction::LTTNG_TRIGGER_ACTION_STOP),
            _ => None,
        }
    }
}

/// What a core_pattern helper knows of the crash
/// (`struct lttng_trigger_onanycoredump`), passed to `lttng_trigger()` as
/// its `opts`, with `nb_opt` = `sizeof(struct lttng_trigger_onanycoredump)`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct lttng_trigger_onanycoredump {
    pub pid: libc::pid_t,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    /// The process name, NUL-terminated.
    pub exec_name: [c_char; NAME_MAX],
    /// The host name, NUL-terminated.
    pub hostname: [c_char; 255],
}

/// liblttng-ctl's `struct lttng_handle`, opaque here: the header only
/// forward-declares it, and `<lttng/lttng.h>` defines it.
pub struct lttng_handle {
    _opaque: [u8; 0],
}
