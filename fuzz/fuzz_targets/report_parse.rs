//! Fuzzes what the crash report parses in-process from untrusted bytes
//! (first byte chooses):
//! - 0: a core's headers and notes ([`notes::read`], which refuses
//!   hostile cores before libdwfl sees them): any bytes give notes or an
//!   error, never a panic, a hang, or an allocation beyond the input; the
//!   thread limit holds;
//! - otherwise: the analysis child's answer as the caller reads it (JSON
//!   from a child acting as the crashing user): any bytes give a report or
//!   an error; a report's signature, text and journal renderings never
//!   panic, and its renderings carry no control character but newlines.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lttng_coredump_report::notes::{self, NoteLimits};
use lttng_coredump_report::{render, signature, Report};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    if which == 0 {
        let limits = NoteLimits {
            max_threads: 64,
            max_notes: 1024,
        };
        let mut core: &[u8] = rest;
        if let Ok(found) = notes::read(&mut core, rest.len() as u64, &limits) {
            assert!(!found.threads.is_empty() && found.threads.len() <= 64);
            assert!(found.extent >= found.segments.iter().map(|s| s.offset).max().unwrap_or(0));
            let _ = found.executable();
            let _ = found.architecture();
        }
        return;
    }
    let Ok(report) = serde_json::from_slice::<Report>(rest) else {
        return;
    };
    let sig = signature(&report);
    assert_eq!(sig.hash.len(), 32);
    assert!(!sig.title.chars().any(char::is_control), "{:?}", sig.title);
    assert!(
        sig.text.lines().all(|l| !l.chars().any(char::is_control)),
        "{:?}",
        sig.text
    );
    for text in [
        render::text(&report, &render::Options { all_threads: true }),
        render::text(&report, &render::Options::default()),
        render::systemd_stack_trace(&report),
    ] {
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "a control character in {text:?}"
        );
    }
    let _ = render::package_json(&report);
});
