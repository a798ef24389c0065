//! The process keeps running while its core is written: nothing it or its
//! parent can see changes, and its counter thread is stopped only within
//! the pause the dump reports.

use crate::common::*;
use std::collections::BTreeMap;
use testsupport::TempDir;

/// Each thread's signal mask and pending signals, and the process's
/// timers, from /proc.
fn signal_state(pid: i32) -> (BTreeMap<i32, (String, String)>, String, String) {
    let mut threads = BTreeMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let tid: i32 = entry.file_name().to_str().unwrap().parse().unwrap();
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        threads.insert(tid, (field("SigBlk:"), field("SigPnd:")));
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let shared = status
        .lines()
        .find_map(|l| l.strip_prefix("ShdPnd:"))
        .unwrap()
        .trim()
        .to_string();
    let timers = std::fs::read_to_string(format!("/proc/{pid}/timers")).unwrap_or_default();
    (threads, shared, timers)
}

#[test]
fn the_target_runs_on_during_the_dump_and_neither_it_nor_its_parent_sees_anything() {
    let dir = TempDir::new("livecore-running");
    let events = dir.path().join("parent-events");
    let mut target = Target::spawn_with_parent(&events, &["--fill", "64", "--random"]);
    let pid = target.pid;
    target.wait_for("counting", |s| s.stamps >= 1000);
    // A signal that stays pending (blocked in every thread).
    // SAFETY: a signal to the target this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
    let before = signal_state(pid);
    assert_ne!(before.1, "0000000000000000", "SIGUSR1 is not pending");
    assert!(before.2.contains("ID:"), "no timer: {}", before.2);

    for (method, after_resume) in [
        ("stop-and-copy", "resumed"),
        ("copy-on-write", "dumping-copy"),
        ("pre-copy", "writing"),
    ] {
        let core = core_path(dir.path(), method);
        let command = dump_command(pid, &core, method);
        // Held once the threads are let go (copy-on-write: while the copy is
        // being written; pre-copy: after its final stop, while the core is
        // written from its staging file): the counter must be counting
        // again.
        let held = Held::start(command, after_resume);
        let counted = target.stats().stamps;
        target.wait_for("counting while the dump is held", |s| {
            s.stamps >= counted + 200
        });
        let report = held.release().unwrap_or_else(|e| panic!("{method}: {e:?}"));
        assert_eq!(report.method.name(), method);
        assert!(report.pause_end_ns > report.pause_begin_ns, "{report:?}");
        // The counter thread was stopped within the pause the dump reports,
        // and only then: it counted again while the dump was held after the
        // pause (above); while we held it stopped, it did not count.
        let counter = report
            .threads
            .iter()
            .find(|t| t.name == "counting_time")
            .unwrap_or_else(|| panic!("no counting_time thread: {report:?}"));
        let (from, to) = (counter.stopped_from_ns, counter.stopped_to_ns);
        assert!(
            report.pause_begin_ns <= from && from <= to && to <= report.pause_end_ns,
            "{method}: the counter's stop [{from}, {to}] is not within the pause [{}, {}]",
            report.pause_begin_ns,
            report.pause_end_ns
        );
        if to - from > 2_000_000 {
            let gaps = target.gaps();
            assert!(
                gaps.iter().any(|&(a, b)| a <= from && to <= b),
                "{method}: the counter counted while stopped [{from}, {to}]: gaps {gaps:?}"
            );
        }
        target.assert_unharmed(method);
        assert_eq!(
            signal_state(pid),
            before,
            "{method}: a signal mask, a pending signal or a timer changed"
        );
        // Nothing of ours is left: no copy, no zombie.
        assert_eq!(
            target.children(),
            vec![],
            "{method}: the target has children"
        );
    }
    let stats = target.stats();
    assert_eq!(stats.reaped, 0);
    assert_eq!(stats.sigchld, 0);
    let status = target.exit();
    assert!(status.success(), "{status}");
    let events = std::fs::read_to_string(&events).unwrap();
    assert_eq!(
        events, "exited 0\nsigchld 1\n",
        "the parent saw more than its child's exit"
    );
}

/// `Shared_Dirty` of the process, in kB (pages it shares copy-on-write).
fn shared_dirty_kb(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Shared_Dirty:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn dumping_unshares_no_page_the_process_shares_with_its_children() {
    // A read that pins a page shared copy-on-write makes the kernel copy it
    // into the process read: the process's memory must stay as it was.
    let dir = TempDir::new("livecore-shared");
    let mut target = Target::spawn(&["--fill", "64", "--random", "--share-with-child"]);
    let before = shared_dirty_kb(target.pid);
    assert!(
        before >= 64 * 1024,
        "the filled pages are not shared: {before} kB"
    );
    for method in ["stop-and-copy", "copy-on-write"] {
        let core = core_path(dir.path(), method);
        let report = dump_ok(&[
            &target.pid.to_string(),
            "-o",
            core.to_str().unwrap(),
            "--method",
            method,
        ]);
        // Nor the copy's (it reads them all): it has to itself only what the
        // process wrote meanwhile (a few stacks and counters, idle as it is).
        assert!(
            report.copy_private_bytes < 16 << 20,
            "{method}: the copy got {} bytes of its own",
            report.copy_private_bytes
        );
        let after = shared_dirty_kb(target.pid);
        assert!(
            after + 4 * 1024 >= before,
            "{method}: the dump unshared the process's pages: Shared_Dirty {before} kB before, {after} kB after"
        );
        target.assert_unharmed(method);
    }
}
