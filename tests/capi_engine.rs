//! The Rust engine the core_pattern handler calls: setting triggers
//! (idempotent, refusing a different trigger under the same name), and
//! firing with extra sessions, the fallback to active snapshot sessions, a
//! trigger whose action has its own snapshot output, each against a real
//! session daemon (a test user's own for the fire, so that the fallback
//! touches no other test's sessions).

use lttng_coredump_engine::identity::{run_as, Identity};
use lttng_coredump_engine::{
    self as engine, encoding, fire_on_any_core_dump, ActionKind, ActionPhase, CrashInfo,
    DaemonTarget, FireOptions, SetOutcome,
};
use lttng_ctl::trigger::{register_trigger, Action, ActionSnapshotOutput, Condition, EventRule};
use lttng_ctl::ErrorCode;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testsupport::sessions::*;
use testsupport::users::*;
use testsupport::*;

#[test]
fn setting_is_idempotent_and_a_different_trigger_under_the_name_is_refused() {
    let _lock = root_triggers_lock();
    let session = TestSession::snapshot("capi-eng-set");
    assert_eq!(
        engine::set_trigger(&session.name, ActionKind::Snapshot).unwrap(),
        SetOutcome::Registered
    );
    assert_eq!(
        engine::set_trigger(&session.name, ActionKind::Snapshot).unwrap(),
        SetOutcome::AlreadySet
    );
    let ours: Vec<_> = engine::list_triggers()
        .unwrap()
        .into_iter()
        .filter(|t| t.actions.iter().any(|a| matches!(a, encoding::CoreDumpAction::Snapshot { session: s, .. } if *s == session.name)))
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(
        ours[0].name.as_deref(),
        Some(encoding::trigger_name(ActionKind::Snapshot, &session.name).as_str())
    );

    // Someone registered something else under the stop trigger's name.
    let stop_name = encoding::trigger_name(ActionKind::Stop, &session.name);
    lttng_ok(&[
        "add-trigger",
        "--name",
        &stop_name,
        "--condition",
        "event-rule-matches",
        "--type=user",
        "--name=some_app:some_event",
        "--action",
        "stop-session",
        &session.name,
    ]);
    let err = engine::set_trigger(&session.name, ActionKind::Stop).unwrap_err();
    assert_eq!(err.code(), ErrorCode::TriggerExists, "{err}");
    // Which is not an OnAnyCoreDump trigger, so unset leaves it alone.
    assert_eq!(
        engine::unset_trigger(&session.name, ActionKind::Stop)
            .unwrap_err()
            .code(),
        ErrorCode::TriggerNotFound
    );
    lttng_ok(&["remove-trigger", &stop_name]);

    engine::unset_trigger(&session.name, ActionKind::Snapshot).unwrap();
    assert_eq!(
        engine::unset_trigger(&session.name, ActionKind::Snapshot)
            .unwrap_err()
            .code(),
        ErrorCode::TriggerNotFound
    );
    let err = engine::set_trigger(&unique_name("capi-eng-none"), ActionKind::Snapshot).unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionNotFound);
}

/// Runs `work` as `identity` in an isolated child and returns its text.
fn as_user(identity: &Identity, work: impl FnOnce() -> String) -> String {
    let out = run_as(Duration::from_secs(20), Some(identity), || {
        work().into_bytes()
    })
    .unwrap();
    String::from_utf8(out).unwrap()
}

fn fire(uid: u32, extra: &[&str], fallback: bool, pid: i32) -> engine::FireReport {
    fire_on_any_core_dump(
        &CrashInfo {
            pid,
            uid,
            gid: uid,
            exec_name: "crasher".into(),
            hostname: "testhost".into(),
            time: 1_700_000_000,
        },
        &FireOptions {
            deadline: Duration::from_secs(20),
            daemon: DaemonTarget::User(uid),
            extra_sessions: extra.iter().map(|s| s.to_string()).collect(),
            fallback_to_active_snapshot_sessions: fallback,
            phase: ActionPhase::All,
        },
    )
}

/// An outcome reduced to what the tests compare: action, error code,
/// snapshot path.
type Done = (ActionKind, Option<i32>, Option<PathBuf>);

/// The report's outcomes by session.
fn by_session(report: &engine::FireReport) -> BTreeMap<String, Vec<Done>> {
    let mut map: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for o in &report.outcomes {
        map.entry(o.session.clone()).or_default().push((
            o.action,
            o.error.as_ref().map(|e| e.code),
            o.snapshot_path.as_ref().map(PathBuf::from),
        ));
    }
    map
}

fn assert_snapshot_of(path: &Path, under: &Path, tag: &str, count: i64) {
    assert!(
        path.starts_with(under),
        "{} not under {}",
        path.display(),
        under.display()
    );
    assert!(
        path.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("crasher-777-1700000000-"),
        "{}",
        path.display()
    );
    assert_eq!(
        fixture_seqs(&babeltrace_events(path), tag),
        (0..count).collect::<Vec<i64>>()
    );
}

#[test]
fn fire_runs_triggers_extra_sessions_and_the_fallback_in_a_users_daemon() {
    // It also lists the root daemon's triggers.
    let _sessiond = ensure_sessiond();
    let mut user = TestUser::create("lcdcapi-engine", false);
    user.start_sessiond();
    let out_dir = |name: &str| user.home.join("traces").join(name);
    for name in ["snap-a", "snap-b", "snap-idle"] {
        user.lttng_ok(&[
            "create",
            name,
            "--snapshot",
            "-o",
            &out_dir(name).display().to_string(),
        ]);
        user.lttng_ok(&["enable-event", "-u", "lttng_coredump:step", "-s", name]);
    }
    user.lttng_ok(&[
        "create",
        "plain",
        "-o",
        &out_dir("plain").display().to_string(),
    ]);
    user.lttng_ok(&["enable-event", "-u", "lttng_coredump:step", "-s", "plain"]);
    for name in ["snap-a", "snap-b", "plain"] {
        user.lttng_ok(&["start", name]);
    }
    let tag = unique_name("capi-eng-tag");
    let out = user
        .crasher_command()
        .args([tag.as_str(), "12", "exit"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // No trigger, no extra session: every active snapshot session.
    let report = fire(user.uid, &[], true, 777);
    assert!(report.errors.is_empty(), "{report:?}");
    let got = by_session(&report);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        ["snap-a", "snap-b"],
        "{report:?}"
    );
    for (session, outcomes) in &got {
        assert_eq!(outcomes.len(), 1);
        let (action, error, path) = &outcomes[0];
        assert_eq!((*action, *error), (ActionKind::Snapshot, None));
        assert_snapshot_of(path.as_ref().unwrap(), &out_dir(session), &tag, 12);
    }
    // Without the fallback, nothing applies and nothing is done.
    assert_eq!(
        fire(user.uid, &[], false, 777),
        engine::FireReport::default()
    );

    // Extra sessions replace the fallback; one that is no snapshot session
    // is an error of its own.
    let report = fire(user.uid, &["snap-b", "plain"], true, 777);
    let got = by_session(&report);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        ["plain", "snap-b"],
        "{report:?}"
    );
    assert_eq!(
        got["plain"][0].1,
        Some(ErrorCode::NotSnapshotSession.raw() as i32),
        "{report:?}"
    );
    assert_eq!(got["snap-b"][0].1, None, "{report:?}");

    // Triggers, registered as the user: one snapshotting snap-a to its own
    // output, then stopping it; the usual one on snap-b.
    let identity = Identity::of_user(user.uid)
        .unwrap()
        .with_lttng_home(&user.home)
        .per_user_daemon();
    let own_output = user.home.join("action-output");
    let own_output_url = own_output.display().to_string();
    let registered = as_user(&identity, || {
        let result = (|| {
            let rule = EventRule::user_tracepoint(encoding::ON_ANY_CORE_DUMP_TRACEPOINT)?;
            let condition = Condition::event_rule_matches(&rule)?;
            let actions = Action::list(&[
                Action::snapshot_session_to(
                    "snap-a",
                    &ActionSnapshotOutput {
                        ctrl_url: own_output_url,
                        ..Default::default()
                    },
                )?,
                Action::stop_session("snap-a")?,
            ])?;
            register_trigger("capi-eng-own-output", &condition, &actions)?;
            engine::set_trigger("snap-b", ActionKind::Snapshot)?;
            let listed = lttng_ctl::trigger::list_triggers()?;
            Ok::<_, lttng_ctl::Error>(format!("{listed:?}"))
        })();
        format!("{result:?}")
    });
    assert!(registered.starts_with("Ok("), "{registered}");
    assert!(registered.contains("StopSession"), "{registered}");
    assert!(registered.contains("action-output"), "{registered}");
    // Registered in the user's daemon, not the root one.
    assert!(
        !lttng_ok(&["list-triggers"]).contains("capi-eng-own-output"),
        "registered in the root daemon"
    );

    let report = fire(user.uid, &["snap-b"], true, 777);
    assert!(report.errors.is_empty(), "{report:?}");
    let got = by_session(&report);
    // snap-b: once, by its trigger (the extra session is not snapshotted twice).
    assert_eq!(got["snap-b"].len(), 1, "{report:?}");
    let a = &got["snap-a"];
    assert_eq!(a.len(), 2, "{report:?}");
    assert_eq!((a[0].0, a[0].1), (ActionKind::Snapshot, None), "{report:?}");
    assert_snapshot_of(a[0].2.as_ref().unwrap(), &own_output, &tag, 12);
    assert_eq!((a[1].0, a[1].1), (ActionKind::Stop, None), "{report:?}");
    let trigger_names: Vec<_> = report
        .outcomes
        .iter()
        .map(|o| (o.trigger_name.clone(), o.owner_uid))
        .collect();
    assert!(
        trigger_names.contains(&(Some("capi-eng-own-output".into()), Some(user.uid))),
        "{trigger_names:?}"
    );
    let status = user.lttng_ok(&["list", "snap-a"]);
    assert!(status.contains("[inactive"), "{status}");
}
