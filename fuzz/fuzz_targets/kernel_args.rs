//! Fuzzes what the kernel hands the handler: any argument list (NUL-split
//! bytes: names with `=`, `/`, newlines, invalid UTF-8, any length, any
//! count) parses without a panic; every error is one printable line; the
//! process name always gives a safe, bounded file-name component.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lttng_coredump_handler::crash::context::CrashContext;
use lttng_coredump_handler::base::sanitize::{
    file_name_component, for_log, is_bidi_control, MAX_COMPONENT_LEN,
};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = data
        .split(|&b| b == 0)
        .map(|arg| OsString::from_vec(arg.to_vec()))
        .collect();
    let parsed = CrashContext::from_kernel_args(args);
    for error in &parsed.errors {
        assert!(
            !error.chars().any(|c| c.is_ascii_control()),
            "an error with a control character: {error:?}"
        );
    }
    let _ = parsed.context.core_limit_bytes();
    let _ = parsed.context.exe_path_from_kernel();
    for raw in [
        parsed.context.comm.as_deref(),
        parsed.context.hostname.as_deref(),
        Some(data),
    ]
    .into_iter()
    .flatten()
    {
        let name = file_name_component(raw, MAX_COMPONENT_LEN);
        assert!(
            !name.is_empty() && name.len() <= MAX_COMPONENT_LEN,
            "{name:?}"
        );
        assert!(!name.starts_with('.'), "{name:?}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_+.".contains(&b)),
            "{name:?}"
        );
        let line = for_log(raw);
        assert!(
            !line.chars().any(|c| c.is_control() || is_bidi_control(c)),
            "{line:?}"
        );
    }
});
