//! The signature of a crash: a stable hash that is the same for every
//! crash of one bug (whatever the address space layout, and across a
//! rebuild of the same code) and differs between bugs, so that a thousand
//! crashes read as one problem with a count (as ABRT/satyr's and apport's
//! signatures do).
//!
//! # The rule (version 1)
//! The signature hashes a text of lines, built from the report:
//!
//! 1. `lttng-coredump signature v1`
//! 2. `executable NAME`: the file name of the crashed executable (its
//!    directory left out: the same program installed elsewhere is the same
//!    program), else the process's command name, else `?`;
//! 3. `signal NAME`: `SIGSEGV`, ..., or `signal none` when the core has
//!    none;
//! 4. the crashing thread's top frames, at most [`FRAMES`] of them, one
//!    `frame LABEL` line each, innermost first, after leaving out its
//!    leading frames that are crash machinery rather than the bug (the
//!    C library's `raise`/`abort`/`__assert_fail`/`__stack_chk_fail`
//!    family, C++'s `std::terminate` family, Rust's panic and abort
//!    functions: see [`is_machinery`]); when that leaves no frame, the
//!    frames as they are. A frame's LABEL is:
//!    - its function name when a symbol names it, demangled, with Rust's
//!      per-build hash, the symbol version (`@@GLIBC_2.34`) and the
//!      compiler's clone suffixes (`.isra.0`, `.constprop.1`, `.part.2`,
//!      `.cold`, ...) removed: no address, no offset into the function, no
//!      module;
//!    - else `MODULE+0xOFFSET`: the module's file name and the frame's
//!      offset from the module's start ([`Frame::module_offset`]), which
//!      ASLR does not change;
//!    - else (an address in no module) `?`, never the absolute address;
//!
//!    and when the crashing thread has no frame at all, one line
//!    `no frames`.
//!
//! The lines end with `\n`; the signature is the first 32 hexadecimal
//! digits (128 bits) of the SHA-256 of the text. The text itself is kept
//! beside it ([`Signature::text`]) so that a person can see why two
//! crashes share a signature.

use crate::demangle::strip_clone_suffixes;
use crate::model::{Frame, Report};
use sha2::{Digest, Sha256};

/// The rule's version, the text's first line.
pub const VERSION: &str = "lttng-coredump signature v1";
/// How many of the crashing thread's frames the signature takes.
pub const FRAMES: usize = 5;

/// A crash's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// 32 hexadecimal digits.
    pub hash: String,
    /// The text hashed (see the module documentation).
    pub text: String,
    /// A one-line summary: `crash: SIGSEGV in bug_one`.
    pub title: String,
}

/// The signature of the crash `report` describes.
pub fn signature(report: &Report) -> Signature {
    // The executable's or the command's name is the crashing process's
    // choice: one line, no control character, in the text hashed and in the
    // title shown.
    let program = one_line(&report.program_name());
    let signal = report.signal.as_ref().map_or_else(
        || "signal none".to_string(),
        |s| format!("signal {}", s.name),
    );
    let frames: &[Frame] = report.crashing_thread().map_or(&[], |t| &t.frames[..]);
    let labels: Vec<String> = frames.iter().map(label).collect();
    let first_own = labels.iter().position(|l| !is_machinery(l)).unwrap_or(0);
    let top: Vec<&String> = labels[first_own..].iter().take(FRAMES).collect();
    let mut text = format!("{VERSION}\nexecutable {program}\n{signal}\n");
    if top.is_empty() {
        text.push_str("no frames\n");
    }
    for label in &top {
        text.push_str("frame ");
        text.push_str(label);
        text.push('\n');
    }
    let digest = Sha256::digest(text.as_bytes());
    let hash: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let signal_name = report
        .signal
        .as_ref()
        .map_or_else(|| "crash".to_string(), |s| one_line(&s.name));
    let title = match top.first() {
        Some(label) => format!("{program}: {signal_name} in {label}"),
        None => format!("{program}: {signal_name}"),
    };
    Signature { hash, text, title }
}

/// A frame's label (see the module documentation).
fn label(frame: &Frame) -> String {
    if let Some(function) = frame.function.as_deref().filter(|f| !f.is_empty()) {
        // Without the symbol version (`__libc_start_main@@GLIBC_2.34`).
        let unversioned = match function.find('@') {
            Some(at) if at > 0 => &function[..at],
            _ => function,
        };
        return strip_clone_suffixes(&one_line(unversioned)).to_string();
    }
    match (&frame.module, frame.module_offset) {
        (Some(module), Some(offset)) => {
            let base = module.rsplit('/').next().unwrap_or(module);
            format!("{}+{:#x}", one_line(base), offset)
        }
        _ => "?".into(),
    }
}

/// `text` on one line (a symbol name could hold a newline).
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Whether a frame's function is crash machinery (how the process died)
/// rather than where the bug is.
pub fn is_machinery(function: &str) -> bool {
    const EXACT: &[&str] = &[
        // The C library: signals, abort, assertions, fortify and stack
        // protector reports, malloc's consistency checks.
        "raise",
        "abort",
        "__GI_raise",
        "__GI_abort",
        "__pthread_kill_implementation",
        "__pthread_kill_internal",
        "__pthread_kill",
        "pthread_kill",
        "gsignal",
        "kill",
        "tgkill",
        "__assert_fail_base",
        "__assert_fail",
        "__assert_perror_fail",
        "__GI___assert_fail",
        "__libc_message",
        "__libc_message_impl",
        "__libc_fatal",
        "__fortify_fail",
        "__chk_fail",
        "__stack_chk_fail",
        "malloc_printerr",
        // C++: terminate handlers and throwing.
        "__gnu_cxx::__verbose_terminate_handler()",
        "__cxxabiv1::__terminate(void (*)())",
        "std::terminate()",
        "__cxa_throw",
        "__cxa_rethrow",
        // Rust: panicking and aborting.
        "rust_begin_unwind",
        "__rust_start_panic",
        "__rust_end_short_backtrace",
        "std::process::abort",
        "std::sys::abort_internal",
        "std::sys::pal::unix::abort_internal",
        "core::result::unwrap_failed",
        "core::option::unwrap_failed",
        "core::option::expect_failed",
    ];
    const PREFIXES: &[&str] = &[
        // Rust's own entry points (`__rustc::rust_begin_unwind`,
        // `__rustc::__rust_abort`, ...).
        "__rustc::",
        "core::panicking::",
        "std::panicking::",
        "panic_abort::",
        "std::sys::backtrace::",
        "std::sys_common::backtrace::",
    ];
    EXACT.contains(&function) || PREFIXES.iter().any(|p| function.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Analysis, Signal, Thread};

    fn frame(function: Option<&str>, module: &str, offset: u64, pc: u64) -> Frame {
        Frame {
            pc,
            function: function.map(str::to_string),
            symbol: None,
            function_offset: Some(4),
            module: Some(module.to_string()),
            module_offset: Some(offset),
            file: None,
            line: None,
        }
    }

    fn report(exe: &str, signal: &str, frames: Vec<Frame>) -> Report {
        Report {
            format: 1,
            executable: Some(exe.into()),
            process: None,
            architecture: "x86_64".into(),
            signal: Some(Signal {
                number: 11,
                name: signal.into(),
                code: 1,
                code_name: None,
                description: None,
                fault_address: Some(0),
                sender_pid: None,
                sender_uid: None,
            }),
            faulting_instruction: None,
            threads: vec![Thread {
                tid: 1,
                crashing: true,
                frames,
                incomplete: None,
            }],
            threads_in_core: 1,
            threads_left_out: None,
            modules: Vec::new(),
            last_events: None,
            analysis: Analysis {
                unwinder: String::new(),
                milliseconds: 0,
                uid: 0,
                gid: 0,
                peak_rss_kib: None,
                core_truncated: false,
                notes: Vec::new(),
            },
        }
    }

    #[test]
    fn addresses_and_directories_do_not_split_a_bug() {
        let a = report(
            "/usr/bin/server",
            "SIGSEGV",
            vec![
                frame(Some("parse.isra.0"), "/usr/bin/server", 0x1139, 0x5555_1139),
                frame(None, "/usr/lib/libx.so.1", 0x2000, 0x7f00_2000),
                frame(None, "/nowhere", 0, 0),
            ],
        );
        let mut b = a.clone();
        b.executable = Some("/opt/bin/server".into());
        let t = &mut b.threads[0].frames;
        t[0].pc = 0x6666_1139;
        t[0].function = Some("parse.constprop.2".into());
        t[0].function_offset = Some(9);
        t[1].pc = 0x7e00_2000;
        t[1].module = Some("/lib/libx.so.1".into());
        assert_eq!(signature(&a), signature(&b));
        let text = signature(&a).text;
        assert_eq!(
            text,
            "lttng-coredump signature v1\nexecutable server\nsignal SIGSEGV\nframe parse\nframe libx.so.1+0x2000\nframe nowhere+0x0\n"
        );
        assert_eq!(signature(&a).hash.len(), 32);
        assert_eq!(signature(&a).title, "server: SIGSEGV in parse");
    }

    #[test]
    fn a_program_name_with_control_characters_is_shown_on_one_line() {
        // Found by the report_parse fuzz target: a command holding DEL.
        let mut r = report("/x", "SIGSEGV", vec![frame(Some("f"), "/x", 1, 1)]);
        r.executable = Some("/bin/lo\u{7f}per\nframe forged".into());
        let sig = signature(&r);
        assert_eq!(sig.title, "lo?per?frame forged: SIGSEGV in f");
        assert!(!sig.title.chars().any(char::is_control), "{:?}", sig.title);
        assert_eq!(
            sig.text,
            "lttng-coredump signature v1\nexecutable lo?per?frame forged\nsignal SIGSEGV\nframe f\n"
        );
    }

    #[test]
    fn another_function_signal_or_program_is_another_problem() {
        let base = report("/bin/p", "SIGSEGV", vec![frame(Some("f"), "/bin/p", 1, 1)]);
        let other_function = report("/bin/p", "SIGSEGV", vec![frame(Some("g"), "/bin/p", 1, 1)]);
        let other_signal = report("/bin/p", "SIGBUS", vec![frame(Some("f"), "/bin/p", 1, 1)]);
        let other_program = report("/bin/q", "SIGSEGV", vec![frame(Some("f"), "/bin/p", 1, 1)]);
        let sig = signature(&base).hash;
        for other in [other_function, other_signal, other_program] {
            assert_ne!(signature(&other).hash, sig);
        }
    }

    #[test]
    fn crash_machinery_is_skipped_and_only_five_frames_count() {
        let names = [
            "__pthread_kill_implementation",
            "raise",
            "abort",
            "std::sys::pal::unix::abort_internal",
            "std::process::abort",
            "__rustc::__rust_abort",
            "__rustc::__rust_start_panic",
            "std::panicking::panic_with_hook",
            "std::sys::backtrace::__rust_end_short_backtrace::<std::panicking::panic_handler::{closure#0}, !>",
            "__rustc::rust_begin_unwind",
            "core::panicking::panic_fmt",
            "app::bug_two",
            "app::step",
            "app::run",
            "app::main",
            "main",
            "__libc_start_main@@GLIBC_2.34",
        ];
        let frames = names
            .iter()
            .map(|n| frame(Some(n), "/bin/app", 0, 0))
            .collect();
        let sig = signature(&report("/bin/app", "SIGABRT", frames));
        assert!(
            sig.text.ends_with(
                "frame app::bug_two\nframe app::step\nframe app::run\nframe app::main\nframe main\n"
            ),
            "{}",
            sig.text
        );
        // Nothing but machinery: the frames as they are.
        let frames = vec![frame(Some("abort"), "/lib/libc.so.6", 0, 0)];
        let sig = signature(&report("/bin/app", "SIGABRT", frames));
        assert!(sig.text.ends_with("frame abort\n"), "{}", sig.text);
        // No frame at all.
        let sig = signature(&report("/bin/app", "SIGABRT", Vec::new()));
        assert!(sig.text.ends_with("no frames\n"), "{}", sig.text);
    }
}
