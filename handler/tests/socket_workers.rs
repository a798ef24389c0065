//! The crash service's resident children (engine `workers`), through the
//! real kernel and a real per-user session daemon: the child that fires in
//! a user's daemon is that user in every id and not dumpable; it is kept
//! for the next crash of that user and used for no other uid; when the
//! daemon hangs (SIGSTOP: the miss is certain) the child misses its
//! deadline, is killed, and the next crash is snapshotted by a new one.
//!
//! The shared root session daemon is never touched: the hang is done to a
//! private per-user daemon of a test user.

use lttng_coredump_engine::ActionKind;
use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;
use testsupport::core_file::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::spawn_printing_pid;
use testsupport::service::*;
use testsupport::sessions::CRASHER_EVENTS;
use testsupport::users::TestUser;
use testsupport::{unique_name, TempDir};

/// The deadline while the daemon is healthy: it must be met, so it is wide.
const HEALTHY_DEADLINE_SECS: u64 = 60;
/// The deadline the stopped daemon makes the child miss, for certain.
const DEADLINE_SECS: u64 = 3;
/// What a crash may take at most: a bound against a hang, not a
/// measurement.
const CRASH_BOUND: Duration = Duration::from_secs(HEALTHY_DEADLINE_SECS + 60);
const NOBODY: u32 = 65534;

fn config(cores: &Path, deadline: u64) -> String {
    format!(
        "core_dir = \"{}\"\nmin_free = 0\nsnapshot_deadline = {deadline}\n\
         snapshot_active_sessions = false\nsnapshot_user_daemon = true\n\
         max_cores_per_minute = 0\nmax_cores_per_user_per_minute = 0\n",
        cores.display()
    )
}

fn signal(pid: i32, signal: i32) {
    assert!(
        testsupport::process::signal(pid, signal),
        "kill {pid} {signal}"
    );
}

/// The service's children (its resident children: it starts no other
/// long-lived process), each with its real, effective, saved and
/// file-system uids.
fn children_of(parent: i32) -> Vec<(i32, String)> {
    testsupport::attacker::children_of(parent)
        .into_iter()
        .filter_map(|pid| {
            let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let uids = status.lines().find_map(|line| line.strip_prefix("Uid:"))?;
            Some((pid, uids.split_whitespace().collect::<Vec<_>>().join(" ")))
        })
        .collect()
}

/// The service's children acting as `uid` (in every id).
fn children_as(service: i32, uid: u32) -> Vec<i32> {
    children_of(service)
        .into_iter()
        .filter(|(_, uids)| *uids == format!("{uid} {uid} {uid} {uid}"))
        .map(|(pid, _)| pid)
        .collect()
}

fn wait_bounded(child: &mut Child) {
    assert!(
        testsupport::attacker::wait_within(child, CRASH_BOUND).is_some(),
        "the crash did not end in {CRASH_BOUND:?}"
    );
}

/// The user's crash (the crasher as the user), its record once written.
fn crash(user: &TestUser, cores: &Path) -> serde_json::Value {
    let (mut child, pid) = spawn_printing_pid(user.crasher_command().args([
        unique_name("resident").as_str(),
        "5",
        "segv",
    ]));
    wait_bounded(&mut child);
    let (_, record) = wait_for_record(cores, pid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    assert_eq!(
        elf_core_identity(&fs::read(record["core"]["path"].as_str().unwrap()).unwrap()).pid,
        pid
    );
    record
}

/// The snapshot of the user's daemon in `record`: its error, if any.
fn user_snapshot_error(record: &serde_json::Value, uid: u32) -> Option<String> {
    let daemon = format!("user {uid}");
    let fire = record["fires"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["daemon"] == daemon.as_str())
        .unwrap_or_else(|| panic!("no fire in the user's daemon: {record:#}"));
    let snapshots: Vec<_> = fire["report"]["outcomes"]
        .as_array()
        .map(|o| o.iter().filter(|o| o["action"] == "Snapshot").collect())
        .unwrap_or_default();
    if snapshots.len() == 1 && snapshots[0]["error"].is_null() {
        assert!(snapshots[0]["snapshot_path"].is_string(), "{record:#}");
        return None;
    }
    Some(format!("{:#}", fire))
}

#[test]
fn a_resident_child_acts_as_one_user_and_one_that_misses_its_deadline_is_replaced() {
    let dir = TempDir::new("lcds-resident");
    let cores = dir.path().join("cores");
    // Declared before the service: the service (and its children, which
    // are the user's processes) goes first.
    let mut user = TestUser::create("lcdsec-resident", false);
    let sessiond = user.start_sessiond();
    let session = "resident";
    let traces = user.home.join("traces");
    user.lttng_ok(&[
        "create",
        session,
        "--snapshot",
        "-o",
        &traces.display().to_string(),
    ]);
    user.lttng_ok(&["enable-event", "-u", CRASHER_EVENTS, "-s", session]);
    user.lttng_ok(&["start", session]);
    user.set_trigger_in_own_daemon(session, ActionKind::Snapshot);
    let handler = SocketHandler::new(
        handler_binary!(),
        dir.path(),
        &config(&cores, HEALTHY_DEADLINE_SECS),
        "@@",
    );
    let service = handler.service.pid() as i32;
    let set_config = |deadline| fs::write(&handler.service.config, config(&cores, deadline));

    // Healthy: snapshotted in the user's daemon by a child that is the
    // user in every id, and that the user cannot inspect.
    let record = crash(&user, &cores);
    assert_eq!(record["uid"], user.uid);
    assert_eq!(user_snapshot_error(&record, user.uid), None);
    let first = children_as(service, user.uid);
    assert_eq!(first.len(), 1, "{:?}", children_of(service));
    let first = first[0];
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(format!("/proc/{first}/mem")).unwrap().uid(),
        0,
        "the user's resident child is dumpable"
    );
    // The next crash of the user is served by the same child.
    let record = crash(&user, &cores);
    assert_eq!(user_snapshot_error(&record, user.uid), None);
    assert_eq!(children_as(service, user.uid), [first]);

    // Another uid's crash (nobody: no daemon of its own) gets a child of
    // its own; the user's is neither used nor changed.
    let (mut child, pid) = spawn_printing_pid(
        testsupport::crasher::command_as(NOBODY, NOBODY, "/bin/sh")
            .args(["-c", testsupport::attacker::CRASH])
            .stdin(Stdio::null()),
    );
    wait_bounded(&mut child);
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["uid"], NOBODY, "{record:#}");
    let nobody_children = children_as(service, NOBODY);
    assert_eq!(nobody_children.len(), 1, "{:?}", children_of(service));
    assert_ne!(nobody_children[0], first);
    assert_eq!(children_as(service, user.uid), [first]);

    // Stopped: the child misses the deadline, is killed and reaped.
    set_config(DEADLINE_SECS).unwrap();
    signal(sessiond, libc::SIGSTOP);
    let record = crash(&user, &cores);
    let problem = user_snapshot_error(&record, user.uid).expect("a snapshot of a stopped daemon");
    let errors = record["errors"].to_string();
    assert!(
        errors.contains("did not answer within"),
        "{problem}\n{errors}"
    );
    assert!(
        !children_of(service).iter().any(|(pid, _)| *pid == first),
        "the child that missed its deadline is still there: {:?}",
        children_of(service)
    );
    assert!(children_as(service, user.uid).is_empty());

    // Continued: the next crash is snapshotted, by a new child.
    signal(sessiond, libc::SIGCONT);
    set_config(HEALTHY_DEADLINE_SECS).unwrap();
    let record = crash(&user, &cores);
    assert_eq!(user_snapshot_error(&record, user.uid), None);
    let replaced = children_as(service, user.uid);
    assert_eq!(replaced.len(), 1, "{:?}", children_of(service));
    assert_ne!(replaced[0], first);

    drop(handler);
    drop(user);
}
