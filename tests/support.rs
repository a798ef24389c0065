//! Checks of the test support itself: the core_pattern guard restores the
//! kernel's value and the crasher really traces. (That the handler's tests
//! run the binary cargo built is checked in handler/tests/handler_crash.rs.)

use std::fs;
use testsupport::crasher::*;
use testsupport::*;

#[test]
fn core_pattern_guard_restores_the_previous_value_even_on_panic() {
    // Read under the lock: another worktree's test may hold core_pattern
    // now (and puts its value back before it lets the lock go).
    let before = {
        let _guard = CorePatternGuard::acquire();
        fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap()
    };
    let dir = TempDir::new("lcd-guard");
    let result = std::panic::catch_unwind(|| {
        let guard = CorePatternGuard::acquire();
        guard.set(&format!("{}/core.%p", dir.path().display()));
        // The kernel writes the core itself: proof the pattern is live.
        let out = crasher_command()
            .args(["guard", "1", "segv"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let core = fs::read_dir(dir.path())
            .unwrap()
            .next()
            .expect("the kernel wrote a core")
            .unwrap();
        let bytes = fs::read(core.path()).unwrap();
        assert_eq!(&bytes[..4], b"\x7fELF");
        panic!("deliberate");
    });
    assert!(result.is_err());
    let _guard = CorePatternGuard::acquire();
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        before
    );
}

#[test]
fn fixture_events_reach_a_snapshot() {
    let _sessiond = ensure_sessiond();
    let session = unique_name("support");
    let out = TempDir::new("lcd-support-snap");
    lttng_ok(&[
        "create",
        &session,
        "--snapshot",
        "-o",
        &out.path().display().to_string(),
    ]);
    let result = std::panic::catch_unwind(|| {
        lttng_ok(&["enable-event", "-u", "lttng_coredump:step", "-s", &session]);
        lttng_ok(&["start", &session]);
        let tag = unique_name("tag");
        // Its output captured: a child writing to the test's stdout could
        // land inside cargo's `test NAME ... ok` line.
        let run = crasher_command()
            .args([&tag, "5", "exit"])
            .output()
            .unwrap();
        assert!(run.status.success(), "{run:?}");
        lttng_ok(&["snapshot", "record", "-s", &session]);
        let events = babeltrace_events(out.path());
        assert_eq!(fixture_seqs(&events, &tag), vec![0, 1, 2, 3, 4]);
    });
    lttng_ok(&["destroy", &session]);
    result.unwrap();
}
