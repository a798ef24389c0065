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
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testsupport::core_file::*;
use testsupport::handler::*;
use testsupport::handler_binary;
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
    // SAFETY: kill(2) on a process this test started; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill {pid} {signal}");
}

/// The service's children (its resident children: it starts no other
/// long-lived process) and the real, effective, saved and file-system uids
/// of each.
fn children_of(parent: i32) -> Vec<(i32, String)> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let status = fs::read_to_string(entry.path().join("status")).ok()?;
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            };
            (field("PPid:")? == parent.to_string()).then_some((pid, field("Uid:")?))
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

/// Starts `command`; its first line ends with its pid.
fn start(mut command: Command) -> (Child, i32) {
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
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

fn wait_bounded(child: &mut Child) {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < CRASH_BOUND,
            "the crash did not end in {CRASH_BOUND:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The user's crash (the crasher as the user), its record once written.
fn crash(user: &TestUser, cores: &Path) -> serde_json::Value {
    let (mut child, pid) = start({
        let mut crasher = user.crasher_command();
        crasher.args([unique_name("resident").as_str(), "5", "segv"]);
        crasher
    });
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
    let (mut child, pid) = start({
        let mut command = Command::new("setpriv");
        command
            .args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
                "--",
                "/bin/sh",
                "-c",
                "echo $$; ulimit -c unlimited; kill -s SEGV $$",
            ])
            .stdin(Stdio::null());
        command
    });
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
