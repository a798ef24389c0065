//! A machine where no session daemon runs, the new user's case:
//! - `lttng-coredump demo` starts a root session daemon, must stop it (and
//!   only it) at the end, exit 0 (its clean-up once overflowed the stack
//!   there), and leave nothing behind but the core, its record and the
//!   snapshot;
//! - a crash there is no failure: its record has no error, unless the
//!   configuration names sessions to snapshot, which could not be; a
//!   socket a killed daemon left is a daemon that died, and an error.
//!
//! The root session daemon is shared by the suite: this test waits until
//! no other test uses it (they hold it shared, through `ensure_sessiond`)
//! nor core_pattern, stops it, and starts it again when done, also when it
//! fails.

use std::os::unix::net::UnixListener;
use testsupport::core_pattern::{kernel_core_pattern, kernel_pipe_limit};
use testsupport::demo::run_demo;
use testsupport::handler::{config_for, crash_a_shell, handler_line, short_handler_copy};
use testsupport::process::{process_id, processes, ProcessId};
use testsupport::sessiond::{root_sessiond_alive, ROOT_SESSIOND_SOCKET};
use testsupport::{handler_binary, RootSessiondStopped, TempDir};

/// The processes of an LTTng session daemon: itself, its consumer daemons
/// and its run-as helper. (Not `lttng-coredump`: other worktrees' handlers,
/// or a child the hardened handler leaves behind on purpose, may run.)
const LTTNG_DAEMONS: [&str; 3] = ["lttng-sessiond", "lttng-consumerd", "lttng-runas"];

/// Root's LTTng daemons and their helpers; test users' own daemons are not
/// root's.
fn root_lttng_processes() -> Vec<(ProcessId, String)> {
    processes()
        .into_iter()
        .filter(|(_, name, _, uid)| *uid == 0 && LTTNG_DAEMONS.contains(&name.as_str()))
        .map(|(id, name, ..)| (id, name))
        .collect()
}

#[test]
fn without_a_session_daemon_the_demo_starts_one_stops_it_and_leaves_nothing_behind() {
    let binary = handler_binary!();
    let stopped = RootSessiondStopped::acquire();
    assert!(!root_sessiond_alive(), "the root session daemon still runs");
    let guard = stopped.core_pattern();
    let before = "core.lcdh-fresh  %p ";
    guard.set(before);
    guard.set_pipe_limit(0);
    let daemons_before = root_lttng_processes();

    let demo = run_demo(binary, "lcdh-fresh");
    let (stdout, stderr) = (&demo.stdout, &demo.stderr);
    assert!(!stderr.contains("overflow"), "{stderr}");

    // It started a daemon of its own, and stopped it.
    let started = demo.field("started a root session daemon for the demo");
    let pid: i32 = started
        .split("pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {started:?}"));
    assert!(
        stdout.contains(&format!(
            "stopped the session daemon the demo started (pid {pid})"
        )),
        "{stdout}"
    );
    assert_eq!(process_id(pid), None, "its daemon (pid {pid}) still runs");
    assert!(
        !root_sessiond_alive(),
        "a root session daemon answers after the demo"
    );
    let left: Vec<_> = root_lttng_processes()
        .into_iter()
        .filter(|process| !daemons_before.contains(process))
        .collect();
    assert!(left.is_empty(), "the demo left {left:?} running");

    // Its session was destroyed before its daemon went.
    let session = demo.session();
    assert!(
        stdout.contains(&format!("destroyed the tracing session {session:?}")),
        "{stdout}"
    );

    // The kernel has its settings back, exactly.
    assert_eq!(kernel_core_pattern(), before);
    assert_eq!(kernel_pipe_limit(), "0");

    // What it keeps is there; its scratch files are not.
    let core = demo.core();
    assert!(core.is_file(), "{}", core.display());
    let snapshot = demo.snapshot();
    assert!(snapshot.is_dir(), "{}", snapshot.display());
    demo.assert_no_scratch_left();

    // The others get their daemon back.
    drop(stopped);
    assert!(
        root_sessiond_alive(),
        "the root session daemon did not come back"
    );
}

#[test]
fn without_a_root_session_daemon_a_crash_records_no_error_unless_sessions_are_configured() {
    let stopped = RootSessiondStopped::acquire();
    assert!(!root_sessiond_alive(), "the root session daemon still runs");
    let dir = TempDir::new("lcdh-nodaemon");
    let cores = dir.path().join("cores");
    let (binary, config) = short_handler_copy(handler_binary!(), &config_for(&cores, ""));
    let guard = stopped.core_pattern();
    guard.set_pipe_limit(16);
    guard.set(&handler_line(&binary, &config));

    // Nothing asked for a snapshot, and no daemon runs: no error, but the
    // record keeps the root daemon's fire, which says it was not running,
    // and `info` says that is why there is no trace.
    let (_, record) = crash_a_shell(&cores);
    assert_eq!(record["core"]["saved"], true, "{record:#}");
    assert_eq!(record["errors"], serde_json::json!([]), "{record:#}");
    let fires = record["fires"].as_array().unwrap();
    assert_eq!(fires.len(), 1, "{record:#}");
    assert_eq!(fires[0]["daemon"], "root", "{record:#}");
    assert_eq!(fires[0]["report"]["daemon_absent"], true, "{record:#}");
    assert_eq!(record["snapshots"], serde_json::json!([]), "{record:#}");
    let info = std::process::Command::new(&binary)
        .args(["info", &record["pid"].to_string(), "--dir"])
        .arg(&cores)
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains("Trace: no snapshot: no root session daemon was running"),
        "{info}"
    );

    // A session the configuration names could not be snapshotted: said
    // once, with LTTng's code once.
    std::fs::write(
        &config,
        config_for(&cores, "snapshot_sessions = [\"lcdh-nodaemon\"]"),
    )
    .unwrap();
    let (_, record) = crash_a_shell(&cores);
    assert_eq!(record["core"]["saved"], true, "{record:#}");
    let errors: Vec<&str> = record["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("snapshot in the root session daemon:")
                && e.contains("no session daemon runs there")),
        "{record:#}"
    );
    assert!(
        errors
            .iter()
            .all(|e| e.matches("(LTTng error").count() <= 1),
        "{errors:#?}"
    );

    // A root daemon that was killed left its socket, which nothing answers:
    // that is a daemon that died, and the record says so, even with no
    // session configured.
    std::fs::write(&config, config_for(&cores, "")).unwrap();
    let run_dir = std::path::Path::new(ROOT_SESSIOND_SOCKET).parent().unwrap();
    std::fs::create_dir_all(run_dir).unwrap();
    drop(UnixListener::bind(ROOT_SESSIOND_SOCKET).unwrap());
    let (_, record) = crash_a_shell(&cores);
    std::fs::remove_file(ROOT_SESSIOND_SOCKET).unwrap();
    assert_eq!(record["core"]["saved"], true, "{record:#}");
    let errors = record["errors"].to_string();
    assert!(
        errors.contains("snapshot in the root session daemon:")
            && errors.contains("No session daemon is available (LTTng error 19)"),
        "{record:#}"
    );
    assert!(!errors.contains("no session daemon runs there"), "{errors}");
    drop(stopped);
    let _ = std::fs::remove_file(&binary);
    let _ = std::fs::remove_file(&config);
}
