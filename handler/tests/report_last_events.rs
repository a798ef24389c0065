//! The crashing process's last events in its report (issue 20: "the stack
//! and the story read together"), through the real kernel core_pattern,
//! real session daemons (a test user's own) and real traced programs:
//!
//! - from the crash's snapshot: the crashing program's last event (with
//!   its field values) and none of another traced program of the same user
//!   running at the same time, in the record, in `info` below the
//!   backtrace, in `info --json`;
//! - root's crash, with a snapshot of root's session in the root daemon;
//! - the same through the crash service (`serve`, core_pattern `@@`);
//! - recovered from the core, when the snapshot could not be taken (the
//!   user's consumer daemon killed), its metadata found in an earlier
//!   crash's snapshot;
//! - a hostile snapshot: the user replaces the snapshot directory, while
//!   the crash's dump is held, with one whose metadata is a FIFO (which
//!   babeltrace2 would wait on forever): the reader, acting as the user, is
//!   killed at `report_deadline`, and only this section says so.

use lttng_coredump_engine::ActionKind;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use testsupport::attacker::{
    children_of, let_go, processes_running, stalling_crash, wait_within, AttackerLog, HangingMount,
};
use testsupport::crasher::{crasher_path, spawn_gated, traced_command_as};
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::journald::StandaloneJournald;
use testsupport::process::{output_text, run_bounded};
use testsupport::recover::{Failure, Lab, Scenario};
use testsupport::service::SocketHandler;
use testsupport::sessions::{snapshot_dirs, TestSession, CRASHER_EVENTS};
use testsupport::users::TestUser;
use testsupport::TempDir;

/// `lttng-coredump ARGS`, successful; its standard output.
fn tool(args: &[&str]) -> String {
    let out = run_bounded(
        Command::new(handler_binary!()).args(args),
        Duration::from_secs(300),
    );
    assert!(
        out.status.success(),
        "lttng-coredump {args:?}:\n{}",
        output_text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The report's last events section of a record (or of `info --json`'s
/// crash, which carries the report): the report is a file beside the
/// record, which names it.
fn last_events(record: &Value) -> Value {
    let report = match record["report"].get("report") {
        Some(report) => report.clone(),
        None => {
            let name = record["report"]["file"]
                .as_str()
                .unwrap_or_else(|| panic!("the record names no report file: {record:#}"));
            assert!(!name.contains('/'), "{name}");
            let core = record["core"]["path"]
                .as_str()
                .unwrap_or_else(|| panic!("no core path in {record:#}"));
            let path = Path::new(core).with_file_name(name);
            serde_json::from_slice(
                &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            )
            .unwrap()
        }
    };
    let events = report["last_events"].clone();
    assert!(
        events.is_object(),
        "no last events in the report: {record:#}"
    );
    events
}

/// The `(seq, tag)` of the crasher's events in a last events section.
fn steps(events: &Value) -> Vec<(i64, String)> {
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "lttng_coredump:step")
        .map(|e| {
            let fields = e["fields"].as_str().unwrap();
            let seq = fields
                .split("seq = ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no seq in {fields}"));
            let tag = fields
                .split("tag = \"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("no tag in {fields}"))
                .to_string();
            (seq, tag)
        })
        .collect()
}

/// A snapshot session in `user`'s own daemon recording the crasher's
/// events with the `vpid` and `procname` contexts, snapshotted on every
/// crash (a trigger of theirs).
fn traced_session(user: &TestUser, session: &str, output: &Path) {
    user.lttng_ok(&[
        "create",
        session,
        "--snapshot",
        "-o",
        output.to_str().unwrap(),
    ]);
    user.lttng_ok(&["enable-event", "-u", CRASHER_EVENTS, "-s", session]);
    user.lttng_ok(&[
        "add-context",
        "-u",
        "-t",
        "vpid",
        "-t",
        "procname",
        "-s",
        session,
    ]);
    user.lttng_ok(&["start", session]);
    user.set_trigger_in_own_daemon(session, ActionKind::Snapshot);
}

/// The crasher run as `user`, emitting 25 events (`mine`, seq 0..24) then
/// SIGSEGV, while another traced program of theirs (40 events, `other`)
/// is alive: the crash's pid and record (in `cores`).
fn crash_beside_another(user: &TestUser, cores: &Path) -> (i32, Value) {
    // Its events are in the same per-user buffers and the snapshot.
    let (mut other, _) = spawn_gated(
        user.crasher_command()
            .args(["--gate", "other", "40", "exit"]),
    );
    let mut crasher = traced_command_as(user.uid, user.gid, crasher_path());
    crasher.env("HOME", &user.home).args(["mine", "25", "segv"]);
    let pid = testsupport::kernel_cores::crash_with_cores(&crasher).0 as i32;
    let (_, record) = wait_for_record(cores, pid);
    let_go(&mut other);
    assert!(wait_within(&mut other, Duration::from_secs(120)).is_some());
    assert_eq!(record["report"]["analyzed"], true, "{record:#}");
    (pid, record)
}

/// The last five events of [`crash_beside_another`] are the crasher's
/// last five (the one right before the crash last, with its fields) from
/// the user's snapshot, none of the other program's; returns them.
fn assert_only_mine(user: &TestUser, events: &Value) -> Vec<(i64, String)> {
    assert_eq!(events["source"]["kind"], "snapshot", "{events:#}");
    let snapshot = events["source"]["path"].as_str().unwrap();
    assert!(
        snapshot.starts_with(user.home.join("traces").to_str().unwrap()),
        "{events:#}"
    );
    let mine: Vec<(i64, String)> = (20..25).map(|seq| (seq, "mine".to_string())).collect();
    assert_eq!(steps(events), mine, "{events:#}");
    assert_eq!(events["total"], 25, "{events:#}");
    assert_eq!(events["other_processes"], 40, "{events:#}");
    mine
}

#[test]
fn the_report_and_info_show_the_crashing_processs_last_events_and_no_other_processs() {
    let dir = TempDir::new("lcdle-snap");
    let cores = dir.path().join("cores");
    let mut user = TestUser::create("lcdle-snap", false);
    user.start_sessiond();
    traced_session(&user, "le", &user.home.join("traces"));
    let journald = StandaloneJournald::start();
    let handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            &format!(
                "snapshot_user_daemon = true\njournal_socket = \"{}\"\nreport_last_events = 5",
                journald.socket().display()
            ),
        ),
    );
    let (pid, record) = crash_beside_another(&user, &cores);
    let events = &last_events(&record);
    let mine = assert_only_mine(&user, events);
    let last = &events["events"][4];
    assert!(
        last["fields"]
            .as_str()
            .unwrap()
            .contains(&format!("vpid = {pid}")),
        "{last:#}"
    );
    // Before the crash, as the handler knows it (when it began).
    assert!(last["to_crash_ns"].as_i64().unwrap() < 0, "{last:#}");

    // info: the backtrace, then the last events below it; --json the same.
    let pid_arg = pid.to_string();
    let cores_arg = cores.to_str().unwrap();
    let info = tool(&["info", "--dir", cores_arg, "--no-pager", &pid_arg]);
    let backtrace = info
        .find("Crashing thread")
        .unwrap_or_else(|| panic!("{info}"));
    let story = info
        .find("Last events (LTTng snapshot")
        .unwrap_or_else(|| panic!("{info}"));
    assert!(backtrace < story, "{info}");
    let last_line = info[story..]
        .lines()
        .rfind(|l| l.contains("lttng_coredump:step"))
        .unwrap_or_else(|| panic!("{info}"));
    assert!(
        last_line.contains("seq = 24") && last_line.contains("tag = \"mine\""),
        "{last_line}\n{info}"
    );
    assert!(!info.contains("\"other\""), "{info}");
    assert!(
        info.contains("40 events of other processes left out"),
        "{info}"
    );
    let json = tool(&["info", "--dir", cores_arg, "--json", &pid_arg]);
    let json: Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(steps(&last_events(&json)), mine);

    // The journal entry's MESSAGE: the stack trace, then the last events.
    journald.wait_for_entry(&[&format!("COREDUMP_PID={pid}")]);
    let coredumpctl = journald.coredumpctl(&["info", &pid_arg]);
    let text = output_text(&coredumpctl);
    assert!(coredumpctl.status.success(), "{text}");
    let stack = text
        .find(&format!("Stack trace of thread {pid}:"))
        .unwrap_or_else(|| panic!("{text}"));
    let story = text
        .find("Last 5 events of the process")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(stack < story, "{text}");
    assert!(text[story..].contains("seq = 24, tag = \"mine\""), "{text}");
    drop(handler);
}

#[test]
fn through_the_crash_service_the_report_has_the_last_events_too() {
    let dir = TempDir::new("lcdle-sock");
    let cores = dir.path().join("cores");
    let mut user = TestUser::create("lcdle-sock", false);
    user.start_sessiond();
    traced_session(&user, "les", &user.home.join("traces"));
    let _service = SocketHandler::new(
        handler_binary!(),
        dir.path(),
        &config_for(
            &cores,
            "snapshot_user_daemon = true\njournal = false\nreport_last_events = 5",
        ),
        "@@",
    );
    let (_, record) = crash_beside_another(&user, &cores);
    assert_only_mine(&user, &last_events(&record));
}

#[test]
fn a_crash_of_roots_gets_the_last_events_of_a_root_daemon_snapshot() {
    let dir = TempDir::new("lcdle-root");
    let cores = dir.path().join("cores");
    // A session of root's in the root daemon, recording root's processes
    // (no vpid context: every event is kept, and a note says why).
    let session = TestSession::snapshot("lcdle-root");
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            &format!(
                "snapshot_sessions = [\"{}\"]\njournal = false\nreport_last_events = 3",
                session.name
            ),
        ),
    );
    let tag = testsupport::unique_name("root");
    let mut crasher = traced_command_as(0, 0, crasher_path());
    crasher.args([tag.as_str(), "12", "segv"]);
    let pid = testsupport::kernel_cores::crash_with_cores(&crasher).0 as i32;
    let (_, record) = wait_for_record(&cores, pid);
    // Analyzed as the service account, never as root.
    assert_eq!(record["report"]["analyzed_as_uid"], 65534, "{record:#}");
    let events = &last_events(&record);
    assert_eq!(events["source"]["kind"], "snapshot", "{events:#}");
    let mine: Vec<(i64, String)> = steps(events)
        .into_iter()
        .filter(|(_, t)| *t == tag)
        .collect();
    assert_eq!(
        mine,
        vec![(9, tag.clone()), (10, tag.clone()), (11, tag.clone())],
        "{events:#}"
    );
    assert!(
        events["notes"].to_string().contains("no vpid or procname"),
        "{events:#}"
    );
}

#[test]
fn without_a_snapshot_the_last_events_are_recovered_from_the_core() {
    let alive = Scenario {
        user: "lcdle-core",
        before: 4,
        after: 4,
        ..Scenario::default()
    };
    let lab = Lab::new(handler_binary!(), &alive);
    lab.user
        .set_trigger_in_own_daemon(&lab.session, ActionKind::Snapshot);
    // A first crash while the daemons live: its events come from the
    // handler's snapshot (and the snapshot's metadata serves the next).
    let first = lab.crash(&alive);
    let events = &last_events(&first.record);
    assert_eq!(events["source"]["kind"], "snapshot", "{events:#}");
    let tail = steps(events);
    assert_eq!(tail.last(), Some(&(7, first.tag.clone())), "{events:#}");
    // The consumer daemon killed: no snapshot of the next crash, whose
    // 6 + 9 events are only in its core.
    let failing = Scenario {
        failure: Failure::KillConsumer,
        snapshot: false,
        before: 6,
        after: 9,
        ..alive
    };
    let crash = lab.crash(&failing);
    let record = &crash.record;
    assert_eq!(record["core_trace"]["only_in_core"], true, "{record:#}");
    let events = &last_events(record);
    assert_eq!(
        events["source"]["kind"], "recovered_from_core",
        "{events:#}"
    );
    let mine: Vec<(i64, String)> = steps(events)
        .into_iter()
        .filter(|(_, tag)| *tag == crash.tag)
        .collect();
    let expected: Vec<(i64, String)> = (0..15).map(|seq| (seq, crash.tag.clone())).collect();
    assert_eq!(mine, expected, "{events:#}");
    let info = tool(&[
        "info",
        "--dir",
        lab.cores.to_str().unwrap(),
        "--no-pager",
        &crash.pid.to_string(),
    ]);
    assert!(
        info.contains("Last events (recovered from the core"),
        "{info}"
    );
    assert!(
        info.contains(&format!("seq = 14, tag = \"{}\"", crash.tag)),
        "{info}"
    );
}

/// The report's deadline in the hostile test: the reader of the FIFO is
/// killed then, for certain (a FIFO nobody writes never answers).
const DEADLINE_SECS: u64 = 15;

#[test]
fn a_snapshot_replaced_by_a_fifo_costs_only_the_last_events_within_the_deadline() {
    let dir = TempDir::new("lcdle-fifo");
    let cores = dir.path().join("cores");
    let log = AttackerLog::new("lcdle-fifo");
    let mut user = TestUser::create("lcdle-fifo", false);
    user.start_sessiond();
    let traces = user.home.join("traces");
    traces_session_with_data(&user, &traces);
    let mount = HangingMount::mount(&user, &user.home.join("fuse"), &log.path("held"));
    let handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            &format!(
                "snapshot_user_daemon = true\njournal = false\nreport_deadline = \
                 {DEADLINE_SECS}\ncore_stall_timeout = 3600\nabort_stalled_fuse = false"
            ),
        ),
    );
    // A crash whose dump waits on the user's file system: the snapshot is
    // taken (before the dump), then the dump is held.
    let (mut crash, pid) = stalling_crash(&user, &mount);
    let_go(&mut crash);
    assert!(
        mount.wait_until_holding(CRASH_TIMEOUT),
        "the crash's dump never reached the file system"
    );
    // The snapshot step is over once its directory is there and the
    // handler has no child left (the fire in the user's daemon is one):
    // the handler is then reading the held dump.
    let deadline = std::time::Instant::now() + CRASH_TIMEOUT;
    let snapshot = loop {
        let handlers = processes_running(&handler.binary);
        let children: usize = handlers.iter().map(|&h| children_of(h).len()).sum();
        match snapshot_dirs(&traces).pop() {
            Some(snapshot) if !handlers.is_empty() && children == 0 => break snapshot,
            _ => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the handler's snapshot never came"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    // The user swaps it for a directory whose metadata is a FIFO.
    let moved = traces.join("moved-away");
    let swap = format!(
        "mv '{0}' '{1}' && mkdir '{0}' && mkfifo '{0}/metadata'",
        snapshot.display(),
        moved.display()
    );
    let status = user
        .command("/bin/sh")
        .args(["-c", &swap])
        .status()
        .unwrap();
    assert!(status.success());
    mount.abort();
    assert!(
        wait_within(&mut crash, CRASH_TIMEOUT).is_some(),
        "the crash did not end"
    );
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["report"]["analyzed"], true, "{record:#}");
    let events = &last_events(&record);
    assert_eq!(events["source"]["kind"], "unavailable", "{events:#}");
    let reason = events["source"]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("did not end within {DEADLINE_SECS} s: killed")),
        "{reason}"
    );
    let info = tool(&[
        "info",
        "--dir",
        cores.to_str().unwrap(),
        "--no-pager",
        &pid.to_string(),
    ]);
    assert!(info.contains("Last events unavailable: "), "{info}");
    assert!(info.contains("Crashing thread"), "{info}");
    drop(handler);
    drop(mount);
}

/// A traced session of `user`'s (see [`traced_session`]) holding events of
/// a program that ran to its end (so that the crash's snapshot has data).
fn traces_session_with_data(user: &TestUser, traces: &Path) {
    traced_session(user, "fifo", traces);
    let out = user
        .crasher_command()
        .args(["before", "10", "exit"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}
