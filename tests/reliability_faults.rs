//! The handler when the session daemon fails, through the real kernel: its
//! consumer daemon killed, the daemon stopped (`SIGSTOP`), the daemon
//! killed while the handler waits on it. The core is saved, the record
//! says what failed, and the crash ends within the snapshot deadline.
//!
//! The shared root session daemon is never touched: the faults are done to
//! a private per-user daemon of a test user, which the handler fires in
//! because the crashing program runs as that user (`snapshot_user_daemon`).

mod capi_support;
mod handler_support;

use capi_support::TestUser;
use handler_support::*;
use lttng_coredump_engine::ActionKind;
use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use testsupport::{babeltrace_events, crasher_path, fixture_seqs, unique_name, TempDir};

const DEADLINE_SECS: u64 = 3;
/// What a crash may take at most when a daemon hangs: the deadline, the
/// handler's grace, and generous room for a loaded machine. A hang would
/// take forever; this is a bound, not a measurement.
const CRASH_BOUND: Duration = Duration::from_secs(DEADLINE_SECS + 20);

fn signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) on a process this test started; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill {pid} {signal}");
}

/// Processes whose parent is `parent`.
fn children_of(parent: i32) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
            // The fields after the command name, which ends at the last ')'.
            let after = &stat[stat.rfind(')')? + 2..];
            let ppid: i32 = after.split(' ').nth(1)?.parse().ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

fn command_name(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Starts `program` as `user` (so the handler fires in the user's daemon);
/// it prints its pid first.
fn start_as(user: &TestUser, script: &str) -> (Child, i32) {
    let mut child = user
        .command("/bin/sh")
        .args(["-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let pid = line
        .split_whitespace()
        .last()
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid printed: {line:?}"));
    (child, pid)
}

fn wait_bounded(child: &mut Child, bound: Duration) -> Duration {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < bound,
            "the crash did not end in {bound:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
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
    user.lttng_ok(&[
        "enable-event",
        "-u",
        "lttng_coredump_test:step",
        "-s",
        session,
    ]);
    user.lttng_ok(&["start", session]);
    // The user's OnAnyCoreDump trigger, set in its own daemon as the user.
    user.set_trigger_in_own_daemon(session, ActionKind::Snapshot);
    let _handler = InstalledHandler::new(&format!(
        "core_dir = \"{}\"\nmin_free = 0\nsnapshot_deadline = {DEADLINE_SECS}\n\
         snapshot_active_sessions = false\nsnapshot_user_daemon = true\n",
        cores.display()
    ));

    // Healthy: the user's crash is snapshotted in the user's daemon.
    let tag = unique_name("faults");
    let crasher = crasher_path();
    let (mut child, pid) = start_as(
        &user,
        &format!("echo $$; exec {} {tag} 7 segv", crasher.display()),
    );
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
    let crash = "echo $$; ulimit -c unlimited; kill -s SEGV $$";
    let (mut child, pid) = start_as(&user, crash);
    wait_bounded(&mut child, CRASH_BOUND);
    let (_, record) = wait_for_record(&cores, pid);
    assert_core_saved(&record, pid);
    let problems = user_daemon_problems(&record, user.uid);
    assert!(
        problems.contains(&format!("snapshot of session \"{session}\"")),
        "{problems}"
    );

    // Stopped: the handler gives up at the deadline.
    signal(sessiond, libc::SIGSTOP);
    let (mut child, pid) = start_as(&user, crash);
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
    let (mut child, pid) = start_as(&user, crash);
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
        // SAFETY: kill(2) on what the test's daemon started; it may be gone.
        unsafe { libc::kill(leftover, libc::SIGKILL) };
    }
    drop(user);
}
