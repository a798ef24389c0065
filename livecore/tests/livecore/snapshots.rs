//! The snapshot taken while the threads are stopped holds the process's
//! last event before the stop, and none after: the trace ends where the
//! core begins.

use crate::common::*;
use lttng_coredump_livecore::LiveReport;
use std::path::Path;
use testsupport::sessions::TestSession;
use testsupport::users::TestUser;
use testsupport::{babeltrace_events, fixture_seqs, root_triggers_lock, unique_name, TempDir};

/// The value gdb prints for `expression` in `core`.
fn gdb_value(core: &std::path::Path, expression: &str) -> i64 {
    let out = gdb(&programs().target, core, &[&format!("print {expression}")]);
    out.lines()
        .find_map(|l| l.strip_prefix("$1 = "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("gdb printed no value for {expression}:\n{out}"))
}

/// The snapshot `daemon` took of `session` during `report`'s dump holds the
/// last event the process emitted before the stop (`last_seq` in its core)
/// and none after.
fn assert_snapshot_ends_at_the_stop(
    report: &LiveReport,
    daemon: &str,
    session: &str,
    core: &Path,
    tag: &str,
    method: &str,
) {
    let fire = report
        .snapshots
        .iter()
        .find(|f| f.daemon == daemon)
        .unwrap_or_else(|| panic!("{method}: no snapshot in the {daemon} daemon: {report:?}"));
    let outcome = fire
        .report
        .as_ref()
        .and_then(|r| r.outcomes.iter().find(|o| o.session == session))
        .unwrap_or_else(|| panic!("{method}: no snapshot of {session}: {fire:?}"));
    assert!(outcome.error.is_none(), "{method}: {outcome:?}");
    let path = outcome.snapshot_path.clone().expect("a snapshot path");
    let seqs = fixture_seqs(&babeltrace_events(std::path::Path::new(&path)), tag);
    assert!(!seqs.is_empty(), "{method}: no event of ours in {path}");

    // The last event the process had emitted when it was stopped, as
    // its core says: in the snapshot, and nothing after it. Only if the
    // emitting thread was stopped between its tracepoint and its
    // update of last_seq can the snapshot hold one more.
    let last = gdb_value(core, "last_seq");
    let max = *seqs.iter().max().unwrap();
    let backtraces = gdb(&programs().target, core, &["thread apply all bt"]);
    let sleeping = backtraces
        .split("\nThread ")
        .find(|t| t.contains("emitting_events"))
        .is_some_and(|t| t.contains("nanosleep"));
    assert!(
        seqs.contains(&last),
        "{method}: the last event before the stop ({last}) is not in the snapshot: {seqs:?}"
    );
    if sleeping {
        assert_eq!(
            max, last,
            "{method}: the snapshot holds events after the stop"
        );
    } else {
        assert!(
            max <= last + 1,
            "{method}: the snapshot holds events after the stop: {max} > {last} + 1"
        );
    }
}

#[test]
fn the_snapshot_taken_during_the_stop_ends_with_the_last_event_before_it() {
    // The dump fires every OnAnyCoreDump trigger of the root daemon, as a
    // crash would: no other test's trigger may be there meanwhile.
    let _lock = root_triggers_lock();
    let session = TestSession::snapshot("livecore-snap");
    let tag = unique_name("live");
    let mut target = Target::spawn(&["--emit", &tag]);
    let pid = target.pid.to_string();
    for method in ["copy-on-write", "stop-and-copy", "pre-copy"] {
        target.wait_for("emitting", |s| s.emitted >= 50);
        let core = core_path(session.output.path(), method);
        let report = dump_ok(&[
            &pid,
            "-o",
            core.to_str().unwrap(),
            "--method",
            method,
            "--session",
            &session.name,
        ]);
        // The process goes on emitting after the dump.
        let after = target.stats().emitted;
        target.wait_for("emitting after the dump", |s| s.emitted >= after + 50);

        assert_snapshot_ends_at_the_stop(&report, "root", &session.name, &core, &tag, method);
        target.assert_unharmed(method);
    }
}

#[test]
fn root_s_dump_of_a_user_s_process_snapshots_in_that_user_s_own_daemon() {
    let _lock = root_triggers_lock();
    let mut user = TestUser::create("lclive-snap", false);
    user.start_sessiond();
    let session = unique_name("livecore-user");
    let output = user.home.join("snapshots");
    user.lttng_ok(&[
        "create",
        &session,
        "--snapshot",
        "-o",
        output.to_str().unwrap(),
    ]);
    user.lttng_ok(&["enable-event", "-u", "lttng_coredump:step", "-s", &session]);
    user.lttng_ok(&["start", &session]);
    user.set_trigger_in_own_daemon(&session, lttng_coredump_engine::ActionKind::Snapshot);
    let tag = unique_name("user");
    let mut command = user.command(&programs().target);
    command.args(["--emit", &tag]);
    let mut target = Target::start(command, None);
    target.wait_for("emitting", |s| s.emitted >= 50);
    let dir = TempDir::new("livecore-user-snap");
    let core = dir.path().join("user.core");
    let report = dump_ok(&[
        &target.pid.to_string(),
        "-o",
        core.to_str().unwrap(),
        "--snapshots",
    ]);
    assert_eq!(report.uid, user.uid);
    let after = target.stats().emitted;
    target.wait_for("emitting after the dump", |s| s.emitted >= after + 50);
    assert_snapshot_ends_at_the_stop(
        &report,
        &format!("user {}", user.uid),
        &session,
        &core,
        &tag,
        "copy-on-write",
    );
    target.assert_unharmed("a user's process");
    drop(target);
}
