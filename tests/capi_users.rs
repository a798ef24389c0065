//! Triggers act with their owner's rights, per-user session daemons are
//! reached as their user through the RFC's `socket_path`, and a hung daemon
//! costs at most the deadline: each with real test users (created and
//! deleted by the test), their own session daemons, and the C helper.

use lttng_coredump_engine::ActionKind;
use lttng_ctl::ErrorCode;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use testsupport::capi::*;
use testsupport::crasher::*;
use testsupport::process::*;
use testsupport::sessions::*;
use testsupport::triggers::*;
use testsupport::users::*;
use testsupport::*;

/// A tracing group name that does not exist, so that the CLI run as a
/// member of `tracing` uses the user's own daemon.
const NO_GROUP: &str = "--group=lcdcapi-no-such-group";

#[test]
fn a_users_trigger_on_a_root_session_does_nothing_to_it() {
    let api = c_api();
    let _lock = root_triggers_lock();
    remove_stale_triggers();
    let root_session = TestSession::snapshot("capi-owner-root");
    let user = TestUser::create("lcdcapi-owner", true);

    // The user, a member of `tracing`, reaches the root daemon: it registers
    // triggers naming root's session (the CLI lets it) and one naming a
    // session of its own there.
    let own_session = unique_name("capi-owner-own");
    let own_output = user.home.join("traces");
    user.lttng_ok(&[
        "create",
        &own_session,
        "--snapshot",
        "-o",
        &own_output.display().to_string(),
    ]);
    user.lttng_ok(&[
        "enable-event",
        "-u",
        "lttng_coredump:step",
        "-s",
        &own_session,
    ]);
    let track = track_only_uid_args(&own_session, user.uid);
    user.lttng_ok(&track.iter().map(String::as_str).collect::<Vec<_>>());
    user.lttng_ok(&["start", &own_session]);
    let trigger_names = [
        format!("lcdcapi-snapshot-{}", root_session.name),
        format!("lcdcapi-stop-{}", root_session.name),
        format!("lcdcapi-own-{own_session}"),
    ];
    let actions = [
        ("snapshot-session", &root_session.name),
        ("stop-session", &root_session.name),
        ("snapshot-session", &own_session),
    ];
    for (name, (action, session)) in trigger_names.iter().zip(actions) {
        user.lttng_ok(&[
            "add-trigger",
            "--name",
            name,
            "--condition",
            "event-rule-matches",
            "--type=user",
            "--name=lttng_coredump:on_any_core_dump",
            "--action",
            action,
            session,
        ]);
    }
    let listed = lttng_ok(&["list-triggers"]);
    assert!(
        listed.contains(&format!("owner uid: {}", user.uid)),
        "{listed}"
    );

    let result = std::panic::catch_unwind(|| {
        let tag = unique_name("capi-owner-tag");
        let out = user
            .crasher_command()
            .args([tag.as_str(), "10", "exit"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let pid = ready_pid(&out) as u32;

        // Fired by root, in the root daemon.
        let fired = fire(api.helper(Link::Shared), &[], pid, "crasher");
        let entries = fired.for_session(&root_session.name);
        assert_eq!(entries.len(), 2, "{}", fired.raw);
        for entry in &entries {
            assert_eq!(entry.owner_uid, i64::from(user.uid), "{}", fired.raw);
            assert!(entry.status < 0, "the daemon refused: {}", fired.raw);
            let message = entry.message.as_deref().unwrap_or_default();
            assert!(
                message.contains(&format!("uid {}), the trigger's owner", user.uid)),
                "the report says whose rights were used: {message}"
            );
        }
        assert!(
            entries.iter().all(|e| e.snapshot_path.is_none()),
            "{}",
            fired.raw
        );
        assert_ne!(fired.ret, 0, "a refused action is an error: {}", fired.raw);
        // Root's session: still recording, and no snapshot.
        assert!(
            root_session.status_line().contains("[active"),
            "{}",
            root_session.status_line()
        );
        assert!(
            root_session.snapshot_dirs().is_empty(),
            "{:?}",
            root_session.snapshot_dirs()
        );

        // The same user's trigger on its own session did its work, with the
        // user's rights.
        let own = fired.for_session(&own_session);
        assert_eq!(own.len(), 1, "{}", fired.raw);
        assert_eq!(own[0].status, 0, "{}", fired.raw);
        let path = own[0].snapshot_path.clone().unwrap();
        assert!(path.starts_with(&own_output), "{}", path.display());
        assert_eq!(
            fixture_seqs(&babeltrace_events(&path), &tag),
            (0..10).collect::<Vec<i64>>()
        );
    });
    for name in &trigger_names {
        let _ = lttng(&["remove-trigger", "--owner-uid", &user.uid.to_string(), name]);
    }
    let _ = lttng(&["destroy", &own_session]);
    drop(user);
    result.unwrap();
}

#[test]
fn fire_through_a_users_run_dir_snapshots_in_that_users_daemon() {
    // The root daemon must run: the point is that the fire still goes to
    // the user's own daemon.
    let _sessiond = ensure_sessiond();
    let api = c_api();
    let mut user = TestUser::create("lcdcapi-pud", false);
    // Started before the user joins `tracing`: a member's lttng-sessiond
    // finds the root daemon and refuses to start.
    user.start_sessiond();
    // In `tracing` now, so that liblttng-ctl would pick the root daemon if
    // the isolation did not steer it to the user's own.
    let status = std::process::Command::new("usermod")
        .args(["-a", "-G", "tracing", &user.name])
        .status()
        .unwrap();
    assert!(status.success());
    let session = "capi-pud";
    let output = user.home.join("traces");
    user.lttng_ok(&[
        NO_GROUP,
        "create",
        session,
        "--snapshot",
        "-o",
        &output.display().to_string(),
    ]);
    user.lttng_ok(&[
        NO_GROUP,
        "enable-event",
        "-u",
        "lttng_coredump:step",
        "-s",
        session,
    ]);
    user.lttng_ok(&[NO_GROUP, "start", session]);
    let tag = unique_name("capi-pud-tag");
    let out = user
        .crasher_command()
        .args([tag.as_str(), "15", "exit"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let pid = ready_pid(&out) as u32;

    // The trigger is set in the user's daemon, as the user, from this root
    // process (which has used liblttng-ctl, so the library's last daemon
    // path is the root one).
    let _ = lttng_ctl::session::list_sessions();
    user.set_trigger_in_own_daemon(session, ActionKind::Snapshot);
    let listed = user.lttng_ok(&[NO_GROUP, "list-triggers"]);
    assert!(
        listed.contains("lttng-coredump:snapshot:capi-pud"),
        "{listed}"
    );
    assert!(
        !lttng_ok(&["list-triggers"]).contains("lttng-coredump:snapshot:capi-pud\n"),
        "the trigger went to the root daemon"
    );

    // The RFC's call: a socket path in the user's run directory.
    let socket: PathBuf = user.run_dir().join("notify-lttng-sessiond");
    for (link, path_arg) in [
        (Link::Shared, socket.display().to_string()),
        (Link::Static, user.run_dir().display().to_string()),
    ] {
        let fired = fire(api.helper(link), &["--socket", &path_arg], pid, "crasher");
        assert_eq!(fired.ret, 0, "{}", fired.raw);
        assert_eq!(fired.entries.len(), 1, "{}", fired.raw);
        let entry = &fired.entries[0];
        assert_eq!(entry.owner_uid, i64::from(user.uid));
        let path = entry.snapshot_path.clone().unwrap();
        assert!(path.starts_with(&output), "{}", path.display());
        assert!(
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("crasher-{pid}-")),
            "{}",
            path.display()
        );
        assert_eq!(
            fixture_seqs(&babeltrace_events(&path), &tag),
            (0..15).collect::<Vec<i64>>()
        );
    }

    // A directory with no daemon is an error, not a fire elsewhere.
    let nowhere = user.home.join("elsewhere/.lttng");
    std::fs::create_dir_all(&nowhere).unwrap();
    let fired = fire(
        api.helper(Link::Shared),
        &["--socket", &nowhere.display().to_string()],
        pid,
        "crasher",
    );
    assert_eq!(
        fired.ret,
        c_code(ErrorCode::NoSessionDaemon),
        "{}",
        fired.raw
    );
    assert!(fired.entries.is_empty());
}

#[test]
fn fire_against_a_stopped_per_user_daemon_is_cancelled_within_the_deadline() {
    let api = c_api();
    let mut user = TestUser::create("lcdcapi-hung", false);
    let pid = user.start_sessiond();
    user.lttng_ok(&["create", "capi-hung", "--snapshot"]);
    let run_dir = user.run_dir().display().to_string();
    // SAFETY: stops the daemon this test started (TestUser's drop resumes
    // and ends it).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);

    let started = Instant::now();
    let fired = fire(
        api.helper(Link::Shared),
        &["--socket", &run_dir, "--timeout-ms", "1000"],
        4242,
        "crasher",
    );
    let took = started.elapsed();
    assert_eq!(fired.ret, c_code(ErrorCode::Cancelled), "{}", fired.raw);
    assert!(
        fired
            .errors
            .iter()
            .any(|(code, message)| *code == c_code(ErrorCode::Cancelled)
                && message.contains("did not answer within 1000 ms")),
        "{}",
        fired.raw
    );
    // Bounded, not measured: a hang would take forever.
    assert!(took < Duration::from_secs(30), "{took:?}");

    let out = run(
        &api.helper(Link::Static).path,
        &[
            "--socket",
            &run_dir,
            "--timeout-ms",
            "500",
            "4242",
            "0",
            "0",
            "crasher",
            "h",
        ],
    );
    assert_eq!(
        stdout(&out),
        format!("ret {}\n", c_code(ErrorCode::Cancelled)),
        "{out:?}"
    );
}
