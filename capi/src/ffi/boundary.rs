//! The one panic boundary every exported function runs in, the error-code
//! convention (0 or a negative `LTTNG_ERR_*`), and the shared checks of
//! pointer and string arguments.

use lttng_ctl::{Error, ErrorCode};
use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, UnwindSafe};

/// The value C gets for an error: the negated `LTTNG_ERR_*` code, so that
/// `lttng_strerror()` explains it.
pub fn error_code(err: &Error) -> c_int {
    -(err.raw_code() as c_int)
}

/// Runs an exported function's body: its error becomes a negative
/// `LTTNG_ERR_*` code, and a panic becomes `-LTTNG_ERR_UNK` instead of
/// unwinding into C.
pub fn boundary(body: impl FnOnce() -> Result<c_int, Error> + UnwindSafe) -> c_int {
    match catch_unwind(body) {
        Ok(Ok(ret)) => ret,
        Ok(Err(err)) => error_code(&err),
        Err(_) => -(ErrorCode::Unknown.raw() as c_int),
    }
}

/// Like [`boundary`], for functions returning a value rather than a code:
/// `fallback` on panic.
pub fn boundary_or<T>(fallback: T, body: impl FnOnce() -> T + UnwindSafe) -> T {
    catch_unwind(body).unwrap_or(fallback)
}

pub fn invalid(message: impl Into<String>, context: impl Into<String>) -> Error {
    Error::with_message(ErrorCode::Invalid, message, context)
}

/// A shared reference from a pointer C passed, or `LTTNG_ERR_INVALID` for
/// NULL.
///
/// # Safety
/// A non-NULL `ptr` must point to a valid `T` that outlives `'a`.
pub unsafe fn try_ref<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Error> {
    // SAFETY: non-NULL per the check; validity is the caller's contract.
    unsafe { ptr.as_ref() }
        .ok_or_else(|| invalid(format!("{what} is NULL"), format!("reading {what}")))
}

/// A string argument C passed, or `LTTNG_ERR_INVALID` for NULL or text
/// that is not UTF-8.
///
/// # Safety
/// A non-NULL `ptr` must point to a NUL-terminated string.
pub unsafe fn try_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Error> {
    if ptr.is_null() {
        return Err(invalid(
            format!("{what} is NULL"),
            format!("reading {what}"),
        ));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    unsafe { CStr::from_ptr(ptr) }.to_str().map_err(|_| {
        invalid(
            format!("{what} is not valid UTF-8"),
            format!("reading {what}"),
        )
    })
}

/// The text of a fixed-size `char` array, which must hold a terminating
/// NUL; `LTTNG_ERR_INVALID` otherwise. Bytes that are not UTF-8 are kept as
/// replacement characters (a process name is whatever the process chose).
pub fn array_str(array: &[c_char], what: &str) -> Result<String, Error> {
    // SAFETY: c_char and u8 have the same size and alignment; the slice
    // covers exactly the array.
    let bytes = unsafe { std::slice::from_raw_parts(array.as_ptr().cast::<u8>(), array.len()) };
    CStr::from_bytes_until_nul(bytes)
        .map(|s| s.to_string_lossy().into_owned())
        .map_err(|_| {
            invalid(
                format!(
                    "{what} has no terminating NUL within its {} bytes",
                    array.len()
                ),
                format!("reading {what}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_and_errors_become_negative_codes() {
        assert_eq!(boundary(|| Ok(0)), 0);
        assert_eq!(
            boundary(|| Err(Error::new(ErrorCode::SessionNotFound, "x"))),
            -(ErrorCode::SessionNotFound.raw() as c_int)
        );
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let code = boundary(|| panic!("boom"));
        std::panic::set_hook(previous);
        assert_eq!(code, -(ErrorCode::Unknown.raw() as c_int));
    }

    #[test]
    fn null_and_unterminated_arguments_are_refused() {
        // SAFETY: NULL is allowed by the contract.
        let err = unsafe { try_ref::<u8>(std::ptr::null(), "handle") }.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Invalid);
        // SAFETY: as above.
        assert!(unsafe { try_str(std::ptr::null(), "path") }.is_err());
        let full = [b'x' as c_char; 4];
        assert!(array_str(&full, "exec_name").is_err());
        let ok = [b'a' as c_char, 0, b'z' as c_char, b'z' as c_char];
        assert_eq!(array_str(&ok, "exec_name").unwrap(), "a");
    }
}
