//! `lttng-coredump demo`, run for real: it traces its program in the root
//! session daemon, installs the handler in core_pattern, crashes the
//! program, and must name a core and a snapshot that really hold the crash,
//! then put core_pattern and core_pipe_limit back exactly and leave no
//! session or scratch file behind.
//!
//! The demo takes no lock of its own; this test holds the suite's
//! core_pattern guard (and with it the root-triggers lock) around it, so no
//! other test's core_pattern is clobbered.

use std::fs;
use testsupport::core_file::*;
use testsupport::core_pattern::{kernel_core_pattern, kernel_pipe_limit};
use testsupport::demo::run_demo;
use testsupport::handler_binary;
use testsupport::{babeltrace_events, ensure_sessiond, CorePatternGuard};

#[test]
fn the_demo_shows_the_core_and_the_snapshot_of_a_real_crash_and_restores_the_kernel() {
    let _sessiond = ensure_sessiond();
    let binary = handler_binary!();
    let guard = CorePatternGuard::acquire();
    // Known values, so that "restored exactly" means something: a pattern
    // with a double space and a trailing one, and a pipe limit of 0 (which
    // the demo must raise for the crash and put back).
    let before = "core.lcdh-demo  %p ";
    guard.set(before);
    guard.set_pipe_limit(0);

    let demo = run_demo(binary, "lcdh-demo");
    let stdout = &demo.stdout;

    // The kernel has its settings back, exactly.
    assert_eq!(kernel_core_pattern(), before);
    assert_eq!(kernel_pipe_limit(), "0");
    assert!(
        stdout.contains(&format!(
            "core_pattern restored to {before:?}, core_pipe_limit to 0"
        )),
        "{stdout}"
    );

    // The core it names is the program's, complete, where asked.
    let core = demo.core();
    let bytes = fs::read(&core).unwrap_or_else(|e| panic!("reading {}: {e}", core.display()));
    let identity = elf_core_identity(&bytes);
    assert_eq!(identity.fname, b"crashing-demo");
    assert!(core
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with(&format!("core.crashing-demo.{}.", identity.pid)));
    let size = demo.field("core size:");
    assert!(
        size.starts_with(&format!("{} bytes", bytes.len())) && size.ends_with("complete"),
        "{size}"
    );
    assert_eq!(bytes.len() as u64, elf_core_extent(&bytes));

    // The snapshot it names holds the program's story, to the crash.
    let snapshot = demo.snapshot();
    assert!(snapshot
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with(&format!("crashing-demo-{}-", identity.pid)));
    let steps: Vec<String> = babeltrace_events(&snapshot)
        .into_iter()
        .filter(|line| line.contains("lttng_coredump:story"))
        .collect();
    assert_eq!(steps.len(), 9, "{steps:#?}");
    assert!(steps[8].contains("step = 9") && steps[8].contains("account 3"));
    // And the demo printed them.
    assert!(
        stdout.contains("what = \"account 3 has no owner record: left NULL\""),
        "{stdout}"
    );

    // Nothing left behind but the core, its record and the snapshot.
    let session = demo.session();
    let sessions = lttng_ctl::list_sessions().unwrap();
    assert!(
        sessions.iter().all(|s| s.name != session),
        "{session} is still there"
    );
    demo.assert_no_scratch_left();
    drop(guard);
}
