//! The crate's one error type: an LTTng error code (kept, and matchable),
//! liblttng-ctl's own message for it, and what was being attempted.

use crate::sys;
use std::ffi::CStr;
use std::fmt;

/// An `LTTNG_ERR_*` code, as a matchable enum.
///
/// The common codes have their own variant; every other code is kept in
/// [`ErrorCode::Other`] so that no information is lost.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `LTTNG_ERR_UNK`
    Unknown,
    /// `LTTNG_ERR_FATAL`
    Fatal,
    /// `LTTNG_ERR_NOMEM`
    NoMemory,
    /// `LTTNG_ERR_NO_SESSIOND`: no session daemon could be reached.
    NoSessionDaemon,
    /// `LTTNG_ERR_SESS_NOT_FOUND`
    SessionNotFound,
    /// `LTTNG_ERR_EXIST_SESS`
    SessionExists,
    /// `LTTNG_ERR_SESSION_INVALID_CHAR`
    SessionInvalidChar,
    /// `LTTNG_ERR_EPERM`
    PermissionDenied,
    /// `LTTNG_ERR_INVALID`: an invalid argument (also used by this crate for
    /// names that do not fit LTTng's limits).
    Invalid,
    /// `LTTNG_ERR_NOT_SNAPSHOT_SESSION`
    NotSnapshotSession,
    /// `LTTNG_ERR_SNAPSHOT_FAIL`
    SnapshotFailed,
    /// `LTTNG_ERR_SNAPSHOT_NODATA`
    SnapshotNoData,
    /// `LTTNG_ERR_SNAPSHOT_OUTPUT_EXIST`
    SnapshotOutputExists,
    /// `LTTNG_ERR_CHAN_EXIST`
    ChannelExists,
    /// `LTTNG_ERR_UST_EVENT_EXIST`
    EventExists,
    /// `LTTNG_ERR_TRACE_ALREADY_STARTED`
    AlreadyStarted,
    /// `LTTNG_ERR_TRACE_ALREADY_STOPPED`
    AlreadyStopped,
    /// `LTTNG_ERR_INVALID_TRIGGER`
    InvalidTrigger,
    /// `LTTNG_ERR_TRIGGER_EXISTS`
    TriggerExists,
    /// `LTTNG_ERR_TRIGGER_NOT_FOUND`
    TriggerNotFound,
    /// `LTTNG_ERR_COMMAND_CANCELLED`: also what this project reports when a
    /// session daemon did not answer before a deadline.
    Cancelled,
    /// `LTTNG_ERR_KERN_NA`: kernel tracer not available.
    KernelTracerUnavailable,
    /// `LTTNG_ERR_NO_CHANNEL`
    NoChannel,
    /// `LTTNG_ERR_START_SESSION_ONCE`: the session was never started.
    SessionNeverStarted,
    /// `LTTNG_ERR_BUFFER_TYPE_MISMATCH`
    BufferTypeMismatch,
    /// Any other `LTTNG_ERR_*` value.
    Other(u32),
}

macro_rules! code_table {
    ($($variant:ident => $sys:ident),* $(,)?) => {
        impl ErrorCode {
            /// The enum for a positive `LTTNG_ERR_*` value.
            pub fn from_raw(code: u32) -> ErrorCode {
                $(if code == sys::lttng_error_code::$sys.0 { return ErrorCode::$variant; })*
                ErrorCode::Other(code)
            }

            /// The positive `LTTNG_ERR_*` value (C functions return it negated).
            pub fn raw(self) -> u32 {
                match self {
                    $(ErrorCode::$variant => sys::lttng_error_code::$sys.0,)*
                    ErrorCode::Other(code) => code,
                }
            }
        }
    };
}

code_table! {
    Unknown => LTTNG_ERR_UNK,
    Fatal => LTTNG_ERR_FATAL,
    NoMemory => LTTNG_ERR_NOMEM,
    NoSessionDaemon => LTTNG_ERR_NO_SESSIOND,
    SessionNotFound => LTTNG_ERR_SESS_NOT_FOUND,
    SessionExists => LTTNG_ERR_EXIST_SESS,
    SessionInvalidChar => LTTNG_ERR_SESSION_INVALID_CHAR,
    PermissionDenied => LTTNG_ERR_EPERM,
    Invalid => LTTNG_ERR_INVALID,
    NotSnapshotSession => LTTNG_ERR_NOT_SNAPSHOT_SESSION,
    SnapshotFailed => LTTNG_ERR_SNAPSHOT_FAIL,
    SnapshotNoData => LTTNG_ERR_SNAPSHOT_NODATA,
    SnapshotOutputExists => LTTNG_ERR_SNAPSHOT_OUTPUT_EXIST,
    ChannelExists => LTTNG_ERR_CHAN_EXIST,
    EventExists => LTTNG_ERR_UST_EVENT_EXIST,
    AlreadyStarted => LTTNG_ERR_TRACE_ALREADY_STARTED,
    AlreadyStopped => LTTNG_ERR_TRACE_ALREADY_STOPPED,
    InvalidTrigger => LTTNG_ERR_INVALID_TRIGGER,
    TriggerExists => LTTNG_ERR_TRIGGER_EXISTS,
    TriggerNotFound => LTTNG_ERR_TRIGGER_NOT_FOUND,
    Cancelled => LTTNG_ERR_COMMAND_CANCELLED,
    KernelTracerUnavailable => LTTNG_ERR_KERN_NA,
    NoChannel => LTTNG_ERR_NO_CHANNEL,
    SessionNeverStarted => LTTNG_ERR_START_SESSION_ONCE,
    BufferTypeMismatch => LTTNG_ERR_BUFFER_TYPE_MISMATCH,
}

/// liblttng-ctl's message for a code (`lttng_strerror()`).
pub fn strerror(code: ErrorCode) -> String {
    let raw = code.raw() as i32;
    // SAFETY: lttng_strerror accepts any int and returns a pointer to a static
    // NUL-terminated string (or an "unknown error" string), never NULL in 2.13;
    // the NULL check guards against other versions.
    let msg = unsafe { sys::lttng_strerror(-raw) };
    if msg.is_null() {
        return format!("LTTng error {raw}");
    }
    // SAFETY: non-NULL, NUL-terminated and static, per lttng_strerror's contract.
    unsafe { CStr::from_ptr(msg) }
        .to_string_lossy()
        .into_owned()
}

/// An LTTng error: the code, liblttng-ctl's message, and the context (what
/// was attempted, on which session or object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    message: String,
    context: String,
}

impl Error {
    /// An error with `code`, explained by `lttng_strerror()`.
    pub fn new(code: ErrorCode, context: impl Into<String>) -> Error {
        Error {
            code,
            message: strerror(code),
            context: context.into(),
        }
    }

    /// An error with `code` and a message of this crate's own (for failures
    /// liblttng-ctl does not describe, such as a name that does not fit).
    pub fn with_message(
        code: ErrorCode,
        message: impl Into<String>,
        context: impl Into<String>,
    ) -> Error {
        Error {
            code,
            message: message.into(),
            context: context.into(),
        }
    }

    /// The matchable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The positive `LTTNG_ERR_*` value; C APIs return its negation.
    pub fn raw_code(&self) -> u32 {
        self.code.raw()
    }

    /// The message describing the code.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What was being attempted.
    pub fn context(&self) -> &str {
        &self.context
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (LTTng error {})",
            self.context,
            self.message,
            self.code.raw()
        )
    }
}

impl std::error::Error for Error {}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Checks a return value of the "0 or more on success, `-LTTNG_ERR_*` on
/// failure" convention; `context` is only built on failure.
pub(crate) fn check_ret(ret: i32, context: impl FnOnce() -> String) -> Result<i32> {
    if ret >= 0 {
        Ok(ret)
    } else {
        Err(Error::new(
            ErrorCode::from_raw(ret.unsigned_abs()),
            context(),
        ))
    }
}

/// Checks an `enum lttng_error_code` return value (`LTTNG_OK` on success).
pub(crate) fn check_code(
    code: sys::lttng_error_code,
    context: impl FnOnce() -> String,
) -> Result<()> {
    if code == sys::lttng_error_code::LTTNG_OK {
        Ok(())
    } else {
        Err(Error::new(ErrorCode::from_raw(code.0), context()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_raw_values() {
        for code in [
            ErrorCode::SessionNotFound,
            ErrorCode::TriggerExists,
            ErrorCode::Other(4242),
        ] {
            assert_eq!(ErrorCode::from_raw(code.raw()), code);
        }
        assert_eq!(ErrorCode::SessionNotFound.raw(), 23);
    }

    #[test]
    fn negative_returns_keep_the_code_and_the_lttng_message() {
        let err = check_ret(-23, || "starting session \"x\"".into()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::SessionNotFound);
        assert_eq!(err.message(), "Session name not found");
        assert!(err.to_string().contains("starting session \"x\""), "{err}");
        assert_eq!(check_ret(3, String::new).unwrap(), 3);
    }
}
