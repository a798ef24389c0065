//! Fixed-size C name arrays: reading them without overrunning, and writing
//! them only when the whole name fits (never truncating silently).

use crate::error::{Error, ErrorCode, Result};
use crate::sys;
use std::ffi::{c_char, CStr, CString};

/// Longest session name, in bytes: liblttng-ctl copies it into
/// `char[LTTNG_NAME_MAX]` arrays with their terminating NUL.
pub(crate) const SESSION_NAME_MAX: usize = sys::LTTNG_NAME_MAX as usize - 1;
/// Longest channel name, in bytes (`char[LTTNG_SYMBOL_NAME_LEN]`).
pub(crate) const CHANNEL_NAME_MAX: usize = sys::LTTNG_SYMBOL_NAME_LEN as usize - 1;
/// Longest path or URL, in bytes (`char[PATH_MAX]`).
pub(crate) const PATH_MAX: usize = sys::LTTNG_PATH_MAX as usize - 1;

/// Reads a NUL-terminated name from a fixed-size C array; a name that fills
/// the array without a NUL is read up to the array's end.
pub(crate) fn read(array: &[c_char]) -> String {
    // SAFETY: c_char and u8 have the same size and alignment; the slice stays
    // within the array.
    let bytes = unsafe { std::slice::from_raw_parts(array.as_ptr().cast::<u8>(), array.len()) };
    match CStr::from_bytes_until_nul(bytes) {
        Ok(s) => s.to_string_lossy().into_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Copies `name` and its terminating NUL into `array`, or fails with
/// `LTTNG_ERR_INVALID` when it has an interior NUL or does not fit.
pub(crate) fn write(array: &mut [c_char], name: &str, what: &str) -> Result<()> {
    let bytes = name.as_bytes();
    if bytes.contains(&0) {
        return Err(Error::with_message(
            ErrorCode::Invalid,
            format!("{what} contains a NUL byte"),
            format!("setting {what} {name:?}"),
        ));
    }
    if bytes.len() >= array.len() {
        return Err(Error::with_message(
            ErrorCode::Invalid,
            format!(
                "{what} is {} bytes long; LTTng allows at most {}",
                bytes.len(),
                array.len() - 1
            ),
            format!("setting {what} {name:?}"),
        ));
    }
    for (dst, src) in array.iter_mut().zip(bytes) {
        *dst = *src as c_char;
    }
    array[bytes.len()] = 0;
    Ok(())
}

/// A C string for a name passed by pointer, rejecting interior NULs and, when
/// `max` is given, names longer than `max` bytes.
pub(crate) fn cstring(name: &str, max: Option<usize>, what: &str) -> Result<CString> {
    if let Some(max) = max {
        if name.len() > max {
            return Err(Error::with_message(
                ErrorCode::Invalid,
                format!(
                    "{what} is {} bytes long; LTTng allows at most {max}",
                    name.len()
                ),
                format!("using {what} {name:?}"),
            ));
        }
    }
    CString::new(name).map_err(|_| {
        Error::with_message(
            ErrorCode::Invalid,
            format!("{what} contains a NUL byte"),
            format!("using {what} {name:?}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_do_not_fit_are_rejected_not_truncated() {
        let mut array = [0 as c_char; 8];
        write(&mut array, "1234567", "session name").unwrap();
        assert_eq!(read(&array), "1234567");
        let err = write(&mut array, "12345678", "session name").unwrap_err();
        assert_eq!(err.code(), ErrorCode::Invalid);
        assert!(err.message().contains("at most 7"), "{}", err.message());
        assert!(write(&mut array, "a\0b", "session name").is_err());
        assert_eq!(
            read(&array),
            "1234567",
            "a failed write leaves the array as it was"
        );
    }

    #[test]
    fn reading_an_unterminated_array_stops_at_its_end() {
        let array = [b'x' as c_char; 4];
        assert_eq!(read(&array), "xxxx");
    }
}
