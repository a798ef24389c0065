//! `lttng-coredump status` against the real root session daemon: it must
//! name the OnAnyCoreDump triggers (as the engine lists them) and the
//! configured sessions a crash would snapshot now, or the active snapshot
//! sessions of the fallback, where cores go and how much room is left.

use lttng_coredump_engine::{self as engine, encoding, ActionKind};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use testsupport::sessions::started_flight_recorder;
use testsupport::{
    ensure_sessiond, handler_binary, root_triggers_lock, run_bounded, unique_name, TempDir,
};

struct Unset(String);

impl Drop for Unset {
    fn drop(&mut self) {
        let _ = engine::unset_trigger(&self.0, ActionKind::Snapshot);
    }
}

fn status(dir: &Path, config: &str) -> String {
    let path = dir.join("config.toml");
    fs::write(&path, config).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let output = run_bounded(
        Command::new(handler_binary!())
            .arg("status")
            .arg("--config")
            .arg(&path)
            .arg("--backup")
            .arg(dir.join("no-backup.json")),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    // The real core_pattern is whatever the machine has now (another test
    // may have the handler installed): installed or not (0, 1, or 2 with a
    // problem), status reports in full and never fails otherwise.
    assert!(matches!(output.status.code(), Some(0..=2)), "{output:?}");
    stdout
}

#[test]
fn status_names_the_triggers_and_sessions_a_crash_would_snapshot_now() {
    let _sessiond = ensure_sessiond();
    // Nobody else registers OnAnyCoreDump triggers in the root daemon
    // meanwhile, so the listing is exactly ours.
    let _lock = root_triggers_lock();
    let dir = TempDir::new("lcdh-status");
    let cores = dir.path().join("cores");
    fs::create_dir(&cores).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let by_trigger = started_flight_recorder("h2-status", &dir.path().join("a"));
    let configured = started_flight_recorder("h2-status", &dir.path().join("b"));
    engine::set_trigger(by_trigger.name(), ActionKind::Snapshot).unwrap();
    let unset = Unset(by_trigger.name().to_string());
    let missing = unique_name("h2-status-missing");

    let report = status(
        dir.path(),
        &format!(
            "core_dir = \"{}\"\nmin_free = 0\nsnapshot_sessions = [\"{}\", \"{missing}\"]\n",
            cores.display(),
            configured.name()
        ),
    );
    assert!(report.contains("root session daemon: alive"), "{report}");
    assert!(
        report.contains(&format!(
            "{} (owner uid 0): snapshot session {:?}",
            encoding::trigger_name(ActionKind::Snapshot, by_trigger.name()),
            by_trigger.name()
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!("{:?}: snapshot mode, active", configured.name())),
        "{report}"
    );
    assert!(
        report.contains(&format!("{missing:?}: NOT FOUND")),
        "{report}"
    );
    assert!(
        !report.contains("fallback (snapshot_active_sessions)"),
        "{report}"
    );
    assert!(
        report.contains(&format!("cores go to: {} (room for ", cores.display())),
        "{report}"
    );

    // No trigger, no configured session: the fallback, which lists every
    // active snapshot session of the daemon (ours among them).
    drop(unset);
    let report = status(
        dir.path(),
        &format!("core_dir = \"{}\"\nmin_free = 0\n", cores.display()),
    );
    assert!(report.contains("OnAnyCoreDump triggers: none"), "{report}");
    assert!(
        report.contains("fallback (snapshot_active_sessions): every active snapshot-mode session:"),
        "{report}"
    );
    assert!(
        report.contains(&format!("    {:?}\n", configured.name())),
        "{report}"
    );

    let report = status(
        dir.path(),
        &format!(
            "core_dir = \"{}\"\nsnapshot_active_sessions = false\n",
            cores.display()
        ),
    );
    assert!(report.contains("nothing would be snapshotted"), "{report}");
}
