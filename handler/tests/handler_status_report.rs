//! `lttng-coredump status` as scripts and users meet it: its exit status
//! (1 not installed, 0 installed and well, 2 installed with a problem),
//! `--json`, sizes in binary units, and an unprivileged user told that the
//! running root session daemon refuses them (permission denied), not that
//! it is down. Run as it is and on a machine whose own core directory
//! holds two crashes with huge records and whose configuration has a bad
//! value: the outcome is the same, since the test owns its view of both
//! (`PrivateMachineDirs`).

use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::machine_dirs::plant_two_huge_crashes;
use testsupport::process::{copy_executable, run_bounded};
use testsupport::{ensure_sessiond, CorePatternGuard, PrivateMachineDirs, TempDir, TestUser};

fn status(binary: &Path, args: &[&str]) -> Output {
    run_bounded(
        Command::new(binary).arg("status").args(args),
        Duration::from_secs(60),
    )
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("status --json is not JSON: {e}: {output:?}"))
}

#[test]
fn status_exit_status_json_and_permission_denied_for_a_user() {
    // Before any private view: useradd writes /etc, and a root session
    // daemon started here must live in the machine's namespace.
    let _sessiond = ensure_sessiond();
    let user = TestUser::create("lcdt-status", false);
    status_scenario(&user);
}

#[test]
fn status_is_the_same_on_a_machine_with_huge_crashes_and_a_bad_configuration() {
    let _sessiond = ensure_sessiond();
    let user = TestUser::create("lcdt-status", false);
    // The machine, played in this test's own mount namespace: status, not
    // installed, would read both (exit status 2 for the bad value).
    let _machine = PrivateMachineDirs::enter();
    plant_two_huge_crashes(Path::new(DEFAULT_CORE_DIR));
    fs::write("/etc/lttng-coredump/config.toml", "zstd_level = 99\n").unwrap();
    status_scenario(&user);
}

/// The scenario, with `user` as the unprivileged user (the root session
/// daemon running). Status, while the handler is not installed, reads the
/// default configuration and core directory: the test's own, empty ones.
fn status_scenario(user: &TestUser) {
    let _own = PrivateMachineDirs::enter();
    let dir = TempDir::new("lcdt-status");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let cores = dir.path().join("cores");
    let binary = dir.path().join("lttng-coredump");
    copy_executable(handler_binary!(), &binary);
    fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).unwrap();

    {
        let guard = CorePatternGuard::acquire();
        guard.set("core");
        let output = status(&binary, &["--json"]);
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let report = json(&output);
        assert_eq!(report["installed"], false);
        assert_eq!(report["exit_status"], 1);
        // The default configuration and core directory are the test's own:
        // no problem in them, no crash.
        assert!(report["config_error"].is_null(), "{report:#}");
        assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
        assert_eq!(
            report["trace_only_in_core"],
            serde_json::json!([]),
            "{report:#}"
        );
    }

    let handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    let output = status(&binary, &["--json"]);
    let report = json(&output);
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_eq!(report["installed"], true);
    assert_eq!(report["root_session_daemon"], "alive");
    assert_eq!(report["core_dir"]["path"], cores.display().to_string());
    assert_eq!(report["config_path"], handler.config.display().to_string());
    assert!(
        report["problems"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    let text = String::from_utf8_lossy(&status(&binary, &[]).stdout).into_owned();
    assert!(
        text.contains("limits: core 8.0G, directory 16.0G, keep 0B free"),
        "{text}"
    );

    // A problem: the configuration has a bad value.
    handler.set_config(&config_for(&cores, "zstd_level = 99"));
    let output = status(&binary, &["--json"]);
    let report = json(&output);
    assert_eq!(output.status.code(), Some(2), "{report:#}");
    assert!(
        report["problems"][0]
            .as_str()
            .unwrap()
            .contains("key zstd_level"),
        "{report:#}"
    );
    handler.set_config(&config_for(&cores, ""));

    // An unprivileged user: the daemon runs, the user may not talk to it.
    let output = run_bounded(user.command(&binary).arg("status"), Duration::from_secs(60));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        text.contains("root session daemon: running, but permission denied"),
        "{output:?}"
    );
    assert!(!text.contains("not running"), "{text}");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    drop(handler);
}
