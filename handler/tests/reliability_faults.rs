//! The handler when the session daemon fails, through the real kernel: its
//! consumer daemon killed, the daemon stopped (`SIGSTOP`), the daemon
//! killed while the handler waits on it. The core is saved, the record
//! says what failed, and the crash ends within the snapshot deadline.
//!
//! The shared root session daemon is never touched: the faults are done to
//! a private per-user daemon of a test user, which the handler fires in
//! because the crashing program runs as that user (`snapshot_user_daemon`).

use lttng_coredump_engine::ActionKind;
use std::fs;
use std::path::Path;
use std::process::Child;
use std::time::Duration;
use testsupport::attacker::{children_of, wait_within};
use testsupport::core_file::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::spawn_printing_pid;
use testsupport::sessions::CRASHER_EVENTS;
use testsupport::users::TestUser;
use testsupport::{babeltrace_events, fixture_seqs, unique_name, TempDir};

/// The snapshot deadline while the daemon is healthy (and when only its
/// consumer is gone): it must be met, so it is wide; a loaded 2-core
/// machine once missed 3 s.
const HEALTHY_DEADLINE_SECS: u64 = 60;
/// The deadline the stopped daemon makes the handler miss, for certain.
const DEADLINE_SECS: u64 = 3;
/// The deadline while the test kills the stopped daemon under the waiting
/// handler: long, so that the handler is certainly still waiting when the
/// test, however delayed, checks.
const KILLED_DEADLINE_SECS: u64 = 30;
/// What a crash may take at most: the longest deadline, the handler's
/// grace, and generous room for a loaded machine. A hang would take
/// forever; this is a bound, not a measurement.
const CRASH_BOUND: Duration = Duration::from_secs(HEALTHY_DEADLINE_SECS + 60);

/// The handler's configuration with a snapshot deadline of `deadline` s.
fn config(cores: &Path, deadline: u64) -> String {
    format!(
        "core_dir = \"{}\"\nmin_free = 0\nsnapshot_deadline = {deadline}\n\
         snapshot_active_sessions = false\nsnapshot_user_daemon = true\n",
        cores.display()
    )
}

fn signal(pid: i32, signal: i32) {
    assert!(
        testsupport::process::signal(pid, signal),
        "kill {pid} {signal}"
    );
}

fn command_name(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Waits for the crash to end, which must be within `bound`; returns how
/// long it took.
fn wait_bounded(child: &mut Child, bound: Duration) -> Duration {
    wait_within(child, bound).unwrap_or_else(|| panic!("the crash did not end in {bound:?}"))
}

/// The record's entries about the user's daemon, as text.
fn user_daemon_problems(record: &serde_json::Value, uid: u32) -> String {
    let daemon = format!("user {uid}");
    let fire = record["fires"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["daemon"] == daemon.as_str())
        .unwrap_or_else(|| panic!("no fire in the user's daemon: {record:#}"));
    assert!(
        fire["report"].is_null()
            || fire["report"]["outcomes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o["snapshot_path"].is_null()),
        "a snapshot was recorded: {record:#}"
    );
    let errors: Vec<&str> = record["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .filter(|e| e.contains(&format!("in the {daemon} session daemon")))
        .collect();
    assert!(
        !errors.is_empty(),
        "no error about the user's daemon: {record:#}"
    );
    errors.join("\n")
}

fn assert_core_saved(record: &serde_json::Value, pid: i32) {
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    let core = fs::read(record["core"]["path"].as_str().unwrap()).unwrap();
    assert_eq!(elf_core_identity(&core).pid, pid);
}

#[test]
fn a_failing_session_daemon_costs_the_snapshot_never_the_core() {
    let dir = TempDir::new("lcdsec-faults");
    let cores = dir.path().join("cores");
    let mut user = TestUser::create("lcdsec-faults", false);
    let sessiond = user.start_sessiond();
    let session = "faults";
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
    // The user's OnAnyCoreDump trigger, set in its own daemon as the user.
    user.set_trigger_in_own_daemon(session, ActionKind::Snapshot);
    let handler = InstalledHandler::new(handler_binary!(), &config(&cores, HEALTHY_DEADLINE_SECS));

    // Healthy: the user's crash is snapshotted in the user's daemon.
    let tag = unique_name("faults");
    let (mut child, pid) = spawn_printing_pid(&mut {
        let mut crasher = user.crasher_command();
        crasher.args([tag.as_str(), "7", "segv"]);
        crasher
    });
    wait_bounded(&mut child, CRASH_BOUND);
    let (_, record) = wait_for_record(&cores, pid);
    assert_core_saved(&record, pid);
    let snapshot = record["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["daemon"] == format!("user {}", user.uid).as_str())
        .unwrap_or_else(|| panic!("{record:#}"))
        .clone();
    assert!(snapshot["error"].is_null(), "{record:#}");
    let path = Path::new(snapshot["path"].as_str().unwrap()).to_path_buf();
    assert!(path.starts_with(&traces));
    assert_eq!(
        fixture_seqs(&babeltrace_events(&path), &tag),
        (0..7).collect::<Vec<i64>>()
    );

    // Its consumer daemon killed: the snapshot fails and the record says so.
    let consumers: Vec<i32> = children_of(sessiond)
        .into_iter()
        .filter(|pid| command_name(*pid).starts_with("lttng-consumer"))
        .collect();
    assert!(
        !consumers.is_empty(),
        "the user's daemon has no consumer daemon"
    );
    for consumer in &consumers {
        signal(*consumer, libc::SIGKILL);
    }
    let crash = || {
        let mut shell = user.command("/bin/sh");
        shell.args(["-c", testsupport::attacker::CRASH]);
        shell
    };
    let (mut child, pid) = spawn_printing_pid(&mut crash());
    wait_bounded(&mut child, CRASH_BOUND);
    let (_, record) = wait_for_record(&cores, pid);
    assert_core_saved(&record, pid);
    let problems = user_daemon_problems(&record, user.uid);
    assert!(
        problems.contains(&format!("snapshot of session \"{session}\"")),
        "{problems}"
    );

    // Stopped: the handler gives up at the deadline.
    handler.set_config(&config(&cores, DEADLINE_SECS));
    signal(sessiond, libc::SIGSTOP);
    let (mut child, pid) = spawn_printing_pid(&mut crash());
    let took = wait_bounded(&mut child, CRASH_BOUND);
    let (_, record) = wait_for_record(&cores, pid);
    assert_core_saved(&record, pid);
    let problems = user_daemon_problems(&record, user.uid);
    assert!(
        problems.contains("did not answer within") || problems.contains("no answer within"),
        "{problems}"
    );
    assert!(took >= Duration::from_secs(DEADLINE_SECS - 1), "{took:?}");

    // Killed while the handler waits on it (stopped first, so that the
    // handler's request is in flight when it dies).
    handler.set_config(&config(&cores, KILLED_DEADLINE_SECS));
    let (mut child, pid) = spawn_printing_pid(&mut crash());
    std::thread::sleep(Duration::from_millis(DEADLINE_SECS * 1000 / 3));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the crash did not wait"
    );
    signal(sessiond, libc::SIGKILL);
    wait_bounded(&mut child, CRASH_BOUND);
    let (_, record) = wait_for_record(&cores, pid);
    assert_core_saved(&record, pid);
    let problems = user_daemon_problems(&record, user.uid);
    assert!(problems.contains("session daemon"), "{problems}");

    // Whatever the daemon left (its consumers) goes before the user.
    for leftover in children_of(sessiond) {
        // What the test's daemon started; it may be gone.
        testsupport::process::signal(leftover, libc::SIGKILL);
    }
    drop(user);
}
