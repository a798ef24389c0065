//! Whom the root-run handler acts as (issue 10, items 1 and 2), played by
//! real unprivileged users through the real kernel `core_pattern` (the C
//! API's `socket_path`: `tests/security_capi_socket_path.rs`):
//!
//! - a user's `~/.lttng` made a symlink to another user's run directory, or
//!   to the root daemon's, never makes a crash of theirs act as that user,
//!   or as root, or in that daemon;
//! - a user's own session daemon, which is their program and may say
//!   anything (here the real lttng-sessiond with an LD_PRELOAD of theirs
//!   that makes it believe its clients are root), lists triggers "owned" by
//!   another uid: those are reported as refused and never acted on; no
//!   process of that uid ever talks to the daemon.

use lttng_coredump_engine::{self as engine, ActionKind};
use std::time::Duration;
use testsupport::attacker::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::sessions::TestSession;
use testsupport::users::TestUser;
use testsupport::TempDir;

/// The snapshot deadline: the daemons must answer within it, so it is wide
/// (a loaded machine is slow); nothing here waits for it to pass.
const DEADLINE_SECS: u64 = 60;
/// A crash's whole handling is bounded by this: a bound, not a measurement.
const CRASH_BOUND: Duration = Duration::from_secs(2 * DEADLINE_SECS + 60);

fn handler_config(cores: &std::path::Path) -> String {
    format!(
        "core_dir = \"{}\"\nmin_free = 0\nsnapshot_deadline = {DEADLINE_SECS}\n\
         snapshot_active_sessions = false\nsnapshot_user_daemon = true\n",
        cores.display()
    )
}

fn crash_as(user: &TestUser, cores: &std::path::Path) -> serde_json::Value {
    let (mut child, pid) = start_as(user, CRASH);
    assert!(
        wait_within(&mut child, CRASH_BOUND).is_some(),
        "the crash did not end within {CRASH_BOUND:?}"
    );
    let (_, record) = wait_for_record(cores, pid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    record
}

#[test]
fn a_users_lttng_symlink_never_makes_a_crash_act_as_another_user_or_root() {
    let dir = TempDir::new("lcdsec-symlink");
    let cores = dir.path().join("cores");
    // The victim: their own daemon, a recording session, their own STOP
    // and SNAPSHOT OnAnyCoreDump triggers on it.
    let mut victim = TestUser::create("lcdsec-sym-victim", false);
    victim.start_sessiond();
    let traces = victim.home.join("traces");
    user_snapshot_session(&victim, "victims", &traces);
    victim.set_trigger_in_own_daemon("victims", ActionKind::Snapshot);
    victim.set_trigger_in_own_daemon("victims", ActionKind::Stop);
    let attacker = TestUser::create("lcdsec-sym-attacker", false);
    let handler = InstalledHandler::new(handler_binary!(), &handler_config(&cores));

    // ~/.lttng -> the victim's run directory.
    attacker
        .command("ln")
        .args(["-s"])
        .arg(victim.run_dir())
        .arg(attacker.run_dir())
        .status()
        .unwrap();
    let record = crash_as(&attacker, &cores);
    assert!(
        session_active(&victim, "victims"),
        "the attacker's crash stopped the victim's session: {record:#}"
    );
    assert!(
        !traces.exists() || std::fs::read_dir(&traces).unwrap().next().is_none(),
        "the attacker's crash snapshotted the victim's session: {record:#}"
    );
    for outcome in outcomes(&record) {
        assert_ne!(outcome["owner_uid"], victim.uid, "{record:#}");
        assert_ne!(outcome["session"], "victims", "{record:#}");
    }
    let user_daemon = format!("user {}", attacker.uid);
    let fire = fire_in(&record, &user_daemon).expect("a fire in the user's daemon");
    assert!(
        fire.to_string().contains("symbolic link")
            && fire["report"]["outcomes"] == serde_json::json!([]),
        "the record must say the run directory was refused: {record:#}"
    );

    // ~/.lttng -> the root daemon's run directory: a root trigger is fired
    // by the root fire only, never by the "user" one.
    let root_session = TestSession::snapshot("lcdsec-symroot");
    engine::set_trigger(&root_session.name, ActionKind::Snapshot).unwrap();
    std::fs::remove_file(attacker.run_dir()).unwrap();
    attacker
        .command("ln")
        .args(["-s", "/var/run/lttng"])
        .arg(attacker.run_dir())
        .status()
        .unwrap();
    let record = crash_as(&attacker, &cores);
    let _ = engine::unset_trigger(&root_session.name, ActionKind::Snapshot);
    let root_fire = fire_in(&record, "root").expect("a root fire");
    assert!(
        root_fire.to_string().contains(&root_session.name),
        "{record:#}"
    );
    let fire = fire_in(&record, &user_daemon).expect("a fire in the user's daemon");
    assert_eq!(
        fire["report"]["outcomes"],
        serde_json::json!([]),
        "the user's fire went into the root daemon: {record:#}"
    );
    assert!(fire.to_string().contains("symbolic link"), "{record:#}");
    drop(handler);
}

#[test]
fn a_users_own_daemon_cannot_make_a_crash_act_as_another_uid() {
    let dir = TempDir::new("lcdsec-liar");
    let cores = dir.path().join("cores");
    let log = AttackerLog::new("lcdsec-liar");
    let creds = log.path("creds.log");
    let victim = TestUser::create("lcdsec-liar-victim", false);
    let mut attacker = TestUser::create("lcdsec-liar-attacker", false);
    // The real lttng-sessiond, run by the attacker with their own library
    // loaded: it believes every client is root, and logs who really came.
    attacker.start_sessiond_with_env(&[
        ("LD_PRELOAD", HOSTILE_SESSIOND),
        ("HOSTILE_FAKE_ROOT", "1"),
        ("HOSTILE_CREDS_LOG", creds.to_str().unwrap()),
    ]);
    user_snapshot_session(&attacker, "liar", &attacker.home.join("traces"));
    // Open to every user, so that nothing but the handler's rule keeps a
    // process of the victim out.
    attacker
        .command("chmod")
        .args(["0755", attacker.run_dir().to_str().unwrap()])
        .status()
        .unwrap();
    attacker
        .command("chmod")
        .arg("0666")
        .arg(attacker.run_dir().join("client-lttng-sessiond"))
        .status()
        .unwrap();
    // Triggers of the attacker's daemon "owned" by the victim.
    for (name, action) in [("victim-stop", "stop"), ("victim-snap", "snapshot")] {
        let out = attacker
            .command(REGISTER_TRIGGER)
            .args([&victim.uid.to_string(), name, action, "liar"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "registering {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listed = attacker.lttng_ok(&["list-triggers"]);
    assert!(
        listed.contains(&format!("owner uid: {}", victim.uid)),
        "{listed}"
    );
    let handler = InstalledHandler::new(handler_binary!(), &handler_config(&cores));
    // Only what comes now counts (removed, not truncated: the file is the
    // attacker's, in a sticky directory).
    std::fs::remove_file(&creds).unwrap();

    let record = crash_as(&attacker, &cores);
    let clients = logged_client_uids(&creds);
    assert!(
        !clients.contains(&victim.uid),
        "a process of the victim (uid {}) talked to the attacker's daemon (clients {clients:?}): {record:#}",
        victim.uid
    );
    assert!(clients.contains(&attacker.uid), "{clients:?}: {record:#}");
    assert!(
        session_active(&attacker, "liar"),
        "the victim's 'stop' was run: {record:#}"
    );
    let fire = fire_in(&record, &format!("user {}", attacker.uid)).expect("a user fire");
    let refused: Vec<&serde_json::Value> = fire["report"]["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["owner_uid"] == victim.uid)
        .collect();
    assert_eq!(refused.len(), 2, "{record:#}");
    for outcome in refused {
        assert!(outcome["snapshot_path"].is_null(), "{record:#}");
        let message = outcome["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains("refused"), "{record:#}");
    }
    drop(handler);
}
