//! `lttng-coredump demo` on a machine where no session daemon runs, the new
//! user's case: the demo starts a root session daemon, must stop it (and
//! only it) at the end, exit 0 (its clean-up once overflowed the stack
//! there), and leave nothing behind but the core, its record and the
//! snapshot.
//!
//! The root session daemon is shared by the suite: this test waits until
//! no other test uses it (they hold it shared, through `ensure_sessiond`)
//! nor core_pattern, stops it, and starts it again when done, also when it
//! fails.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use testsupport::process::{process_id, processes, ProcessId};
use testsupport::sessiond::root_sessiond_alive;
use testsupport::{crasher_path, handler_binary, run_bounded, RootSessiondStopped, TempDir};

/// The text after `label` on the first output line that starts with it.
fn field<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} line in the demo's output:\n{stdout}"))
}

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

    let dir = TempDir::new("lcdh-fresh");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let output = run_bounded(
        Command::new(binary)
            // The traced program, which the demo finds beside an installed
            // binary; cargo's target directory has it elsewhere.
            .env("LTTNG_COREDUMP_DEMO_PROGRAM", crasher_path())
            .arg("demo")
            .arg("--dir")
            .arg(dir.path()),
        Duration::from_secs(300),
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the demo failed: {:?}\n{stdout}\n{stderr}",
        output.status
    );
    assert!(!stderr.contains("overflow"), "{stderr}");

    // It started a daemon of its own, and stopped it.
    let started = field(&stdout, "started a root session daemon for the demo");
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
    let session = field(&stdout, "session")
        .split('"')
        .nth(1)
        .expect("a quoted session name")
        .to_string();
    assert!(
        stdout.contains(&format!("destroyed the tracing session {session:?}")),
        "{stdout}"
    );

    // The kernel has its settings back, exactly.
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        format!("{before}\n")
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/core_pipe_limit").unwrap(),
        "0\n"
    );

    // What it keeps is there; its scratch files are not.
    let core = PathBuf::from(field(&stdout, "core:"));
    assert_eq!(core.parent().unwrap(), dir.path().join("core"), "{stdout}");
    assert!(core.is_file(), "{}", core.display());
    let snapshot = PathBuf::from(field(&stdout, "snapshot:"));
    assert_eq!(
        snapshot.parent().unwrap(),
        dir.path().join("snapshot"),
        "{stdout}"
    );
    assert!(snapshot.is_dir(), "{}", snapshot.display());
    let scratch = field(&stdout, "now: |")
        .split(' ')
        .next()
        .map(|handler| Path::new(handler).parent().unwrap().to_path_buf())
        .unwrap();
    assert!(!scratch.exists(), "{} is left behind", scratch.display());

    // The others get their daemon back.
    drop(stopped);
    assert!(
        root_sessiond_alive(),
        "the root session daemon did not come back"
    );
}
