//! The handler's check of what trace a saved core holds (`core_trace` in
//! the crash record), and the tools that point at it (`info`, `status`)
//! and read it (`trace --from-core`), on real crashes through the real
//! core_pattern: a traced program of a test user whose private consumer
//! daemon was SIGKILLed before the crash (so that the handler's snapshot
//! of the session fails while the buffers stay mapped), a program with no
//! LTTng buffers, and the check turned off.
//!
//! The buffers carry only a trace UUID; the handler ties them to the
//! failed session by the metadata of a snapshot of it it recorded on an
//! earlier crash (the first crash of the test, while the daemons are
//! alive), and `trace --from-core` finds its metadata the same way. A
//! user who turns that earlier snapshot's directory into a FUSE file system
//! that never answers costs the tie (the search, acting as the user, is cut
//! at its deadline), never the handling of the crash.

use serde_json::Value;
use std::process::{Command, Output};
use std::time::Duration;
use testsupport::attacker::{AttackerLog, HangingMount};
use testsupport::handler::{config_for, crash_a_shell, names_in, InstalledHandler};
use testsupport::handler_binary;
use testsupport::process::run_bounded;
use testsupport::recover::*;
use testsupport::TempDir;

const TOOL_TIMEOUT: Duration = Duration::from_secs(300);

/// `lttng-coredump ARGS`, run to its end (as root).
fn tool(args: &[&str]) -> Output {
    run_bounded(Command::new(handler_binary!()).args(args), TOOL_TIMEOUT)
}

/// What a command printed, stdout then stderr.
fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The `seq` fields of the fixture's events tagged `tag`, from `trace
/// --json` lines.
fn json_seqs(stdout: &[u8], tag: &str) -> Vec<i64> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["name"] == "lttng_coredump:step" && e["fields"]["tag"] == tag)
        .filter_map(|e| e["fields"]["seq"].as_i64())
        .collect()
}

#[test]
fn core_trace_ties_the_buffers_to_the_failed_session_and_trace_from_core_reads_them() {
    let alive = Scenario {
        user: "lcdhint",
        before: 4,
        after: 4,
        ..Scenario::default()
    };
    let lab = Lab::new(handler_binary!(), &alive);
    // The handler snapshots the session on every crash: a trigger of the
    // user's in their own daemon.
    lab.user
        .set_trigger_in_own_daemon(&lab.session, lttng_coredump_engine::ActionKind::Snapshot);
    let uid = lab.user.uid;
    let own_daemon = format!("user {uid}");
    // A first crash while the daemons live: the handler snapshots the
    // session in the user's daemon (its metadata will tie the buffers).
    let first = lab.crash(&alive);
    let snapshotted = first.record["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| {
            s["daemon"] == own_daemon.as_str() && s["session"] == "rec" && s["error"].is_null()
        });
    assert!(snapshotted, "{:#}", first.record);
    assert_eq!(
        first.record["core_trace"]["checked"], true,
        "{:#}",
        first.record
    );
    assert_eq!(
        first.record["core_trace"]["only_in_core"], false,
        "{:#}",
        first.record
    );
    // Then the consumer daemon is killed before the next crash, which
    // emits 9 more events after that.
    let failing = Scenario {
        failure: Failure::KillConsumer,
        snapshot: false,
        before: 6,
        after: 9,
        ..alive
    };
    let crash = lab.crash(&failing);
    let record = &crash.record;
    let section = &record["core_trace"];
    assert_eq!(section["checked"], true, "{record:#}");
    assert_eq!(section["only_in_core"], true, "{section:#}");
    let traces = section["traces"].as_array().unwrap();
    let trace = traces
        .iter()
        .find(|t| t["uuid"] == crash.uuid.as_str())
        .unwrap_or_else(|| panic!("no trace {} in {section:#}", crash.uuid));
    assert!(trace["packets"].as_u64().unwrap() >= 1, "{section:#}");
    assert!(trace["bytes"].as_u64().unwrap() > 0, "{section:#}");
    assert!(section["buffers"].as_u64().unwrap() >= 1);
    let core = crash.core.to_str().unwrap();
    assert_eq!(
        section["recover_command"],
        format!("lttng-coredump recover {core}").as_str()
    );
    // The failed snapshot of the session in the user's daemon: its
    // buffers are in the core, tied by the first crash's snapshot.
    let failed = section["failed_snapshots"].as_array().unwrap();
    let ours = failed
        .iter()
        .find(|f| f["daemon"] == own_daemon.as_str())
        .unwrap_or_else(|| panic!("no failed snapshot of {own_daemon} in {section:#}"));
    assert_eq!(ours["core_holds"], "its_buffers", "{section:#}");
    assert_eq!(
        ours["traces"][0]["uuid"],
        crash.uuid.as_str(),
        "{section:#}"
    );
    assert_eq!(ours["traces"][0]["session"], "rec", "{section:#}");
    assert!(record["stages"]["core_trace"]["ended_unix_us"].as_u64() > Some(0));
    // The user's copy says the same (it is their core and their session).
    // Published just after root's record: waited for (a hang guard).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let copy_name = loop {
        let found = names_in(&lab.cores)
            .into_iter()
            .find(|n| n.contains(&format!(".{}.", crash.pid)) && n.ends_with(".user.json"));
        match found {
            Some(name) => break name,
            None if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            None => panic!("no user's copy of the record"),
        }
    };
    let copy: Value =
        serde_json::from_slice(&std::fs::read(lab.cores.join(copy_name)).unwrap()).unwrap();
    assert_eq!(
        copy["core_trace"]["failed_snapshots"][0]["core_holds"],
        "its_buffers"
    );

    let cores = lab.cores.to_str().unwrap();
    let pid = crash.pid.to_string();
    // info: the finding and the commands.
    let info = tool(&["info", &pid, "--dir", cores]);
    let shown = text(&info);
    assert!(info.status.success(), "{shown}");
    assert!(shown.contains("Core Trace: the core holds"), "{shown}");
    assert!(shown.contains(&crash.uuid), "{shown}");
    assert!(
        shown.contains(&format!("Recover: lttng-coredump trace {pid} --from-core")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("lttng-coredump recover {core} -o DIR")),
        "{shown}"
    );
    // trace without --from-core: no snapshot, and where the trace is.
    let plain = tool(&["trace", &pid, "--dir", cores]);
    assert!(!plain.status.success());
    assert!(
        text(&plain).contains(&format!("lttng-coredump trace {pid} --from-core")),
        "{}",
        text(&plain)
    );
    // trace --from-core: every event of this crash, in order, those
    // emitted after the consumer daemon died included.
    let traced = tool(&[
        "trace",
        &pid,
        "--dir",
        cores,
        "--from-core",
        "--all",
        "--json",
    ]);
    assert_eq!(traced.status.code(), Some(0), "{}", text(&traced));
    assert_eq!(
        json_seqs(&traced.stdout, &crash.tag),
        (0..15).collect::<Vec<i64>>(),
        "{}",
        text(&traced)
    );
    let last = tool(&["trace", &pid, "--dir", cores, "--from-core", "-n", "3"]);
    let shown = text(&last);
    assert_eq!(last.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains(&format!("-- trace {} recovered from the core", crash.uuid)),
        "{shown}"
    );
    assert!(shown.contains("seq = 14"), "{shown}");
    assert!(!shown.contains("seq = 11,"), "{shown}");
    // Nothing is left of the temporary trace.
    let leftovers: Vec<_> = std::fs::read_dir("/var/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("lttng-coredump-")
                && p.join("trace").join(&crash.uuid).exists()
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // status: the crash is among those whose trace is only in the core.
    let config = lab.handler.as_ref().unwrap().config.clone();
    let status = tool(&["status", "--json", "--config", config.to_str().unwrap()]);
    let status: Value = serde_json::from_slice(&status.stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}: {}", text(&status)));
    let listed = status["trace_only_in_core"].as_array().unwrap();
    assert!(
        listed.iter().any(|c| c["pid"] == crash.pid
            && c["command"] == format!("lttng-coredump trace {pid} --from-core").as_str()),
        "{status:#}"
    );
    assert!(
        !listed.iter().any(|c| c["pid"] == first.pid),
        "the first crash had its snapshot: {status:#}"
    );
}

#[test]
fn core_trace_says_a_core_without_lttng_buffers_holds_none_and_trace_from_core_exits_4() {
    let dir = TempDir::new("lcd-coretrace-none");
    let cores = dir.path().join("cores");
    let _handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    let (pid, record) = crash_a_shell(&cores);
    let section = &record["core_trace"];
    assert_eq!(section["checked"], true, "{record:#}");
    assert_eq!(section["buffers"], 0, "{section:#}");
    assert_eq!(section["traces"], Value::Array(vec![]), "{section:#}");
    assert_eq!(section["only_in_core"], false, "{section:#}");
    assert!(section["recover_command"].is_null(), "{section:#}");
    assert!(
        section["summary"]
            .as_str()
            .unwrap()
            .contains("did not load lttng-ust"),
        "{section:#}"
    );
    let info = tool(&["info", &pid.to_string(), "--dir", cores.to_str().unwrap()]);
    let shown = text(&info);
    assert!(
        shown.contains("Core Trace: no LTTng buffers found"),
        "{shown}"
    );
    assert!(!shown.contains("Recover:"), "{shown}");
    let traced = tool(&[
        "trace",
        &pid.to_string(),
        "--dir",
        cores.to_str().unwrap(),
        "--from-core",
    ]);
    assert_eq!(traced.status.code(), Some(4), "{}", text(&traced));
    assert!(
        text(&traced).contains(&format!("the core of PID {pid} holds no LTTng trace")),
        "{}",
        text(&traced)
    );
}

#[test]
fn core_trace_turned_off_by_the_configuration_says_so_in_the_record() {
    let dir = TempDir::new("lcd-coretrace-off");
    let cores = dir.path().join("cores");
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(&cores, "check_core_trace = false"),
    );
    let (pid, record) = crash_a_shell(&cores);
    let section = &record["core_trace"];
    assert_eq!(section["checked"], false, "{record:#}");
    assert_eq!(
        section["not_checked_reason"], "turned off (check_core_trace = false)",
        "{section:#}"
    );
    assert_eq!(record["stages"]["core_trace"]["started_unix_us"], 0);
    assert_eq!(record["core"]["saved"], true, "{record:#}");
    let info = tool(&["info", &pid.to_string(), "--dir", cores.to_str().unwrap()]);
    assert!(
        text(&info).contains("Core Trace: not checked: turned off (check_core_trace = false)"),
        "{}",
        text(&info)
    );
}

/// The hang guard of the test below: the handler's search must end at its
/// 2 s deadline; this is wide room for a loaded machine, not a speed test
/// (a handler that waits on the file system never ends at all).
const CORE_TRACE_BOUND_US: u64 = 30_000_000;

#[test]
fn core_trace_search_of_a_snapshot_directory_a_user_made_hang_ends_at_the_deadline_untied() {
    let alive = Scenario {
        user: "lcdhinthang",
        before: 4,
        after: 4,
        ..Scenario::default()
    };
    let lab = Lab::new(handler_binary!(), &alive);
    lab.user
        .set_trigger_in_own_daemon(&lab.session, lttng_coredump_engine::ActionKind::Snapshot);
    let uid = lab.user.uid;
    let own_daemon = format!("user {uid}");
    // A first crash while the daemons live: its record names the snapshot
    // the handler recorded, the directory a later tie searches.
    let first = lab.crash(&alive);
    let searched = first.record["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["daemon"] == own_daemon.as_str() && s["session"] == "rec" && s["error"].is_null()
        })
        .and_then(|s| s["path"].as_str())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| panic!("no snapshot of rec recorded: {:#}", first.record));
    assert!(
        searched.starts_with(&lab.user.home),
        "{}",
        searched.display()
    );
    // The user replaces that directory by their FUSE file system that never
    // answers (tests/fixtures/hangfs.c): a search acting as the user waits
    // there for good (the mount refuses every other user, root included,
    // without asking the file system). The guard aborts and unmounts it
    // whatever happens, before the lab deletes the user.
    let log = AttackerLog::new("lcd-coretrace-hang");
    std::fs::rename(&searched, searched.with_extension("moved")).unwrap();
    let mount = HangingMount::mount(&lab.user, &searched, &log.path("held"));
    // Then the consumer daemon is killed and the program crashes: its
    // snapshot fails, its buffers are in the core, and the only snapshot
    // of the session a record names is on the hanging file system. (The
    // lab's own snapshot, taken as the user before the failure to read
    // the UUID back, is in no record.)
    let failing = Scenario {
        failure: Failure::KillConsumer,
        before: 6,
        after: 9,
        ..alive
    };
    let crash = lab.crash(&failing);
    let record = &crash.record;
    assert_eq!(record["core"]["saved"], true, "{record:#}");
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    assert!(crash.core.is_file(), "{}", crash.core.display());
    let section = &record["core_trace"];
    assert_eq!(section["checked"], true, "{record:#}");
    assert_eq!(section["only_in_core"], true, "{section:#}");
    assert!(
        section["traces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["uuid"] == crash.uuid.as_str()),
        "no trace {} in {section:#}",
        crash.uuid
    );
    // The search was cut at its deadline: said, and nothing tied.
    let notes: Vec<&str> = section["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        notes.iter().any(|n| n.contains(&format!(
            "searching the snapshots for metadata as uid {uid}"
        )) && n.contains("within 2000 ms")),
        "no note of the search's deadline: {section:#}"
    );
    let ours = section["failed_snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["daemon"] == own_daemon.as_str())
        .unwrap_or_else(|| panic!("no failed snapshot of {own_daemon} in {section:#}"));
    assert_eq!(ours["core_holds"], "buffers_not_tied", "{section:#}");
    assert_eq!(ours["traces"], Value::Array(vec![]), "{section:#}");
    // The handler's whole run is bounded: the check took its deadline, not
    // the file system's forever.
    let stage = &record["stages"]["core_trace"];
    let (started, ended) = (
        stage["started_unix_us"].as_u64().unwrap(),
        stage["ended_unix_us"].as_u64().unwrap(),
    );
    assert!(
        started > 0 && ended >= started && ended - started < CORE_TRACE_BOUND_US,
        "{stage:#}"
    );
    drop(mount);
}
