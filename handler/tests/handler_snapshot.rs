//! The handler's snapshots with the real engine, through the real kernel: a
//! traced crasher crashes, the kernel runs the freshly built handler, and
//! the snapshot it records (named after the crash) must hold that
//! crasher's events, taken before the core was read. Also: an OnAnyCoreDump
//! trigger registered through the engine is fired by a real crash, a stop
//! trigger stops its session, and a crashing user whose session daemon is
//! unreachable or hung still gets a core, with a record saying why there is
//! no snapshot, within the snapshot deadline.
//!
//! The root session daemon is shared with every other test: sessions have
//! unique names, the handler never falls back to every active session
//! (`config_for`), and triggers are registered only while the installed
//! handler's guard holds the root-triggers lock.

use lttng_coredump_engine::{self as engine, encoding, ActionKind};
use serde_json::Value;
use std::fs;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use testsupport::crasher::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::*;
use testsupport::sessions::{is_active, started_flight_recorder};
use testsupport::{babeltrace_events, ensure_test_user, fixture_seqs, unique_name, TempDir};

/// An OnAnyCoreDump trigger set through the engine; unset when dropped.
struct TriggerSet {
    session: String,
    action: ActionKind,
}

impl TriggerSet {
    /// Only while an `InstalledHandler` (which holds the root-triggers
    /// lock) lives.
    fn set(_held_by: &InstalledHandler, session: &str, action: ActionKind) -> TriggerSet {
        engine::set_trigger(session, action).expect("setting the trigger");
        TriggerSet {
            session: session.to_string(),
            action,
        }
    }
}

impl Drop for TriggerSet {
    fn drop(&mut self) {
        let _ = engine::unset_trigger(&self.session, self.action);
    }
}

/// Runs the crasher (as root), emitting `count` events tagged `tag`, and
/// returns its crash record.
fn crash(cores: &Path, tag: &str, count: u32) -> (i32, Value) {
    let output = run_bounded(
        crasher_command().args([tag, &count.to_string(), "segv"]),
        CRASH_TIMEOUT,
    );
    assert!(!output.status.success());
    let pid = ready_pid(&output);
    let (_, record) = wait_for_record(cores, pid);
    (pid, record)
}

/// The record's snapshot entries of `session`.
fn entries_of<'a>(record: &'a Value, session: &str) -> Vec<&'a Value> {
    record["snapshots"]
        .as_array()
        .expect("a snapshots list")
        .iter()
        .filter(|entry| entry["session"] == session)
        .collect()
}

fn assert_core_saved(record: &Value) {
    assert_eq!(record["core"]["saved"], true, "{record:#}");
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    let core = PathBuf::from(record["core"]["path"].as_str().unwrap());
    assert!(core.is_file(), "{}", core.display());
}

/// The snapshot directory an entry names: in `out`, named after the crash.
fn snapshot_dir(entry: &Value, out: &Path, pid: i32, record: &Value) -> PathBuf {
    assert!(entry["error"].is_null(), "{entry:#}");
    let path = PathBuf::from(entry["path"].as_str().expect("a snapshot path"));
    assert_eq!(path.parent().unwrap(), out, "{entry:#}");
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with(&format!("crasher-{pid}-{}-", record["time"])),
        "{name}"
    );
    path
}

/// Two sessions sharing one output directory, both snapshotted for one
/// crash (in the same second): the session daemon names a snapshot's
/// directory after the snapshot's name and a count of that session's
/// snapshots only, so under one name both would write into one directory,
/// the second one's channel and metadata files over the first one's.
#[test]
fn two_sessions_sharing_an_output_directory_get_a_snapshot_each() {
    let dir = TempDir::new("lcdh-shared-out");
    let cores = dir.path().join("cores");
    let out = dir.path().join("snapshots");
    let first = started_flight_recorder("shared-a", &out);
    let second = started_flight_recorder("shared-b", &out);
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            &format!(
                "snapshot_sessions = [\"{}\", \"{}\"]",
                first.name(),
                second.name()
            ),
        ),
    );
    let tag = unique_name("sh");
    let (pid, record) = crash(&cores, &tag, 5);
    assert_core_saved(&record);
    let mut paths = Vec::new();
    for session in [first.name(), second.name()] {
        let entries = entries_of(&record, session);
        assert_eq!(entries.len(), 1, "{record:#}");
        let snapshot = snapshot_dir(entries[0], &out, pid, &record);
        assert!(
            snapshot
                .file_name()
                .unwrap()
                .to_string_lossy()
                .contains(&format!("-{session}-")),
            "{}",
            snapshot.display()
        );
        assert_eq!(
            fixture_seqs(&babeltrace_events(&snapshot), &tag),
            (0..5).collect::<Vec<i64>>(),
            "{}",
            snapshot.display()
        );
        paths.push(snapshot);
    }
    assert_ne!(paths[0], paths[1], "{record:#}");
}

#[test]
fn a_crash_is_snapshotted_before_its_core_is_read_and_the_snapshot_holds_its_events() {
    let dir = TempDir::new("lcdh-snap");
    let cores = dir.path().join("cores");
    let out = dir.path().join("snapshots");
    let traced = started_flight_recorder("snap", &out);
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            &format!("snapshot_sessions = [\"{}\"]", traced.name()),
        ),
    );
    let tag = unique_name("s");
    let (pid, record) = crash(&cores, &tag, 7);

    assert_core_saved(&record);
    let entries = entries_of(&record, traced.name());
    assert_eq!(entries.len(), 1, "{record:#}");
    assert_eq!(entries[0]["daemon"], "root");
    assert_eq!(entries[0]["action"], "snapshot");
    assert!(entries[0]["trigger"].is_null());
    let snapshot = snapshot_dir(entries[0], &out, pid, &record);
    assert_eq!(
        fixture_seqs(&babeltrace_events(&snapshot), &tag),
        (0..7).collect::<Vec<i64>>()
    );
    // Only root's applications are traced (`track_only_uid`): the test
    // users' crashers of this file's other tests leave nothing in it.
    let uids: Vec<String> = fs::read_dir(snapshot.join("ust/uid"))
        .expect("a per-uid snapshot")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(uids, ["0"]);

    // The snapshots were done before the first byte of the core was read.
    let stages = &record["stages"];
    let us = |stage: &str, end: &str| stages[stage][end].as_u64().expect("a time");
    assert!(us("snapshots", "started_unix_us") <= us("snapshots", "ended_unix_us"));
    assert!(
        us("snapshots", "ended_unix_us") <= us("core", "started_unix_us"),
        "{stages:#}"
    );
    assert!(us("core", "started_unix_us") <= us("core", "ended_unix_us"));
    assert!(us("snapshots", "started_unix_us") / 1_000_000 >= record["time"].as_u64().unwrap());
}

#[test]
fn an_on_any_core_dump_trigger_set_through_the_engine_is_fired_by_a_real_crash() {
    let dir = TempDir::new("lcdh-trig");
    let cores = dir.path().join("cores");
    let out = dir.path().join("snapshots");
    let traced = started_flight_recorder("trig", &out);
    // No configured session: only the trigger names this session.
    let handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    let _trigger = TriggerSet::set(&handler, traced.name(), ActionKind::Snapshot);
    let tag = unique_name("t");
    let (pid, record) = crash(&cores, &tag, 5);

    assert_core_saved(&record);
    let entries = entries_of(&record, traced.name());
    assert_eq!(entries.len(), 1, "{record:#}");
    assert_eq!(
        entries[0]["trigger"],
        encoding::trigger_name(ActionKind::Snapshot, traced.name())
    );
    let snapshot = snapshot_dir(entries[0], &out, pid, &record);
    assert_eq!(
        fixture_seqs(&babeltrace_events(&snapshot), &tag),
        (0..5).collect::<Vec<i64>>()
    );
    assert!(
        is_active(traced.name()),
        "a snapshot trigger must not stop the session"
    );
}

#[test]
fn a_stop_trigger_stops_its_session_on_a_real_crash() {
    let dir = TempDir::new("lcdh-stop");
    let cores = dir.path().join("cores");
    let out = dir.path().join("snapshots");
    let traced = started_flight_recorder("stop", &out);
    // Stopping a session makes the session daemon ask every app it traces
    // to stop, the crashing one included, which cannot answer while the
    // kernel holds it (the daemon would wait its app socket timeout, 5 s by
    // default). The handler therefore stops sessions only after it has read
    // the core and let the process go: the test config's 2 s deadline is
    // enough, and the stop stage comes after the core stage.
    let handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    let _trigger = TriggerSet::set(&handler, traced.name(), ActionKind::Stop);
    assert!(is_active(traced.name()));
    let (_, record) = crash(&cores, &unique_name("p"), 3);

    assert_core_saved(&record);
    let entries = entries_of(&record, traced.name());
    assert_eq!(entries.len(), 1, "{record:#}");
    assert_eq!(entries[0]["action"], "stop");
    assert!(entries[0]["error"].is_null(), "{record:#}");
    assert_eq!(
        entries[0]["trigger"],
        encoding::trigger_name(ActionKind::Stop, traced.name())
    );
    assert!(
        !is_active(traced.name()),
        "the stop trigger left the session active"
    );
    let stages = &record["stages"];
    let at = |stage: &str, edge: &str| stages[stage][edge].as_u64().unwrap();
    assert!(
        at("stops", "started_unix_us") >= at("core", "ended_unix_us"),
        "the stop ran before the core was read: {stages:#}"
    );
}

/// A test user whose `~/.lttng/client-lttng-sessiond` is a socket that
/// never answers: nobody listens (`listening` false: connections are
/// refused) or somebody listens and never replies (a hung daemon).
struct UserDaemonSocket {
    uid: u32,
    gid: u32,
    socket: PathBuf,
    _listener: Option<UnixListener>,
}

impl UserDaemonSocket {
    fn plant(user: &str, listening: bool) -> UserDaemonSocket {
        let (uid, gid) = ensure_test_user(user, false);
        let home = PathBuf::from(format!("/home/{user}"));
        let run_dir = home.join(".lttng");
        fs::create_dir_all(&run_dir).unwrap();
        std::os::unix::fs::chown(&run_dir, Some(uid), Some(gid)).unwrap();
        let socket = run_dir.join("client-lttng-sessiond");
        let _ = fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).unwrap();
        std::os::unix::fs::chown(&socket, Some(uid), Some(gid)).unwrap();
        UserDaemonSocket {
            uid,
            gid,
            socket,
            // Dropped at once when not listening: the socket file stays,
            // and connecting to it is refused.
            _listener: listening.then_some(listener),
        }
    }

    /// Crashes the fixture as this user; returns the record.
    fn crash(&self, cores: &Path) -> Value {
        let output = run_bounded(
            crasher_as(self.uid, self.gid).args([&unique_name("n"), "2", "segv"]),
            CRASH_TIMEOUT,
        );
        let pid = ready_pid(&output);
        wait_for_record(cores, pid).1
    }
}

impl Drop for UserDaemonSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.socket);
    }
}

/// The fire in the crashing user's daemon, from the record.
fn user_fire(record: &Value, uid: u32) -> &Value {
    record["fires"]
        .as_array()
        .unwrap()
        .iter()
        .find(|fire| fire["daemon"] == format!("user {uid}"))
        .unwrap_or_else(|| panic!("no fire in the user's daemon: {record:#}"))
}

#[test]
fn a_crashing_users_unreachable_session_daemon_costs_the_snapshot_not_the_core() {
    let dir = TempDir::new("lcdh-nod");
    let cores = dir.path().join("cores");
    let user = UserDaemonSocket::plant("lcdh-h2-nodaemon", false);
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(&cores, "snapshot_user_daemon = true"),
    );
    let record = user.crash(&cores);

    assert_eq!(record["uid"], user.uid);
    assert_core_saved(&record);
    let fire = user_fire(&record, user.uid);
    let errors = fire["report"]["errors"].to_string();
    assert!(
        errors.to_lowercase().contains("session daemon"),
        "the fire does not say the daemon is unreachable: {fire:#}"
    );
    assert!(
        fire["report"]["outcomes"].as_array().unwrap().is_empty(),
        "{fire:#}"
    );
    let record_errors = record["errors"].to_string();
    assert!(
        record_errors.contains(&format!("snapshot in the user {} session daemon", user.uid)),
        "{record_errors}"
    );
}

#[test]
fn a_crashing_users_hung_session_daemon_costs_at_most_the_deadline() {
    let dir = TempDir::new("lcdh-hung");
    let cores = dir.path().join("cores");
    let user = UserDaemonSocket::plant("lcdh-h2-hung", true);
    // Missed for certain, however long: the daemon never answers. Long
    // enough that root's own fire, which runs first, never uses it up on a
    // loaded machine (the user's daemon would then not be tried at all).
    const DEADLINE_SECS: u64 = 10;
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_with_deadline(&cores, DEADLINE_SECS, "snapshot_user_daemon = true"),
    );
    let record = user.crash(&cores);

    assert_core_saved(&record);
    let fire = user_fire(&record, user.uid);
    let errors = fire["report"]["errors"].to_string();
    assert!(errors.contains("did not answer within"), "{fire:#}");
    // Root's fire and the user's together stayed within the deadline, plus
    // the time to kill and reap the child that was waiting: a wide margin
    // for a loaded machine, far below the hang the deadline prevents.
    let stages = &record["stages"]["snapshots"];
    let took_us =
        stages["ended_unix_us"].as_u64().unwrap() - stages["started_unix_us"].as_u64().unwrap();
    assert!(
        took_us < (DEADLINE_SECS + 8) * 1_000_000,
        "the snapshots took {took_us} µs: {record:#}"
    );
}
