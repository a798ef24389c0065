//! lttng-ctl's error paths against the real session daemon: each gives the
//! right LTTng code, liblttng-ctl's message and the context, never a panic,
//! and a rejected name is never truncated into a different, created one.

use lttng_ctl::snapshot::SNAPSHOT_NAME_MAX;
use lttng_ctl::{
    list_sessions, ChannelBuilder, Domain, Error, ErrorCode, EventBuilder, Session, SessionBuilder,
    SessionOutput, SnapshotOutput,
};
use std::os::unix::process::CommandExt;
use std::process::Command;
use testsupport::crasher::*;
use testsupport::sessions::{create, flight_recorder, lttng_list, session_name};
use testsupport::{ensure_sessiond, unique_name, TempDir};

fn assert_error(
    result: Result<impl std::fmt::Debug, Error>,
    code: ErrorCode,
    message: &str,
    context: &str,
) {
    let err = result.expect_err("the call should fail");
    assert_eq!(err.code(), code, "{err}");
    assert_eq!(err.message(), message, "{err}");
    assert!(
        err.context().contains(context),
        "{context:?} not in the context of: {err}"
    );
    assert!(err.to_string().contains(message), "{err}");
}

fn session_names() -> Vec<String> {
    list_sessions()
        .expect("listing sessions")
        .into_iter()
        .map(|s| s.name)
        .collect()
}

#[test]
fn an_unknown_session_is_reported_as_not_found() {
    let _sessiond = ensure_sessiond();
    let name = session_name("unknown");
    let session = Session::from_name(&name).unwrap();
    let not_found = "Session name not found";
    assert_error(
        session.start(),
        ErrorCode::SessionNotFound,
        not_found,
        &name,
    );
    assert_error(session.stop(), ErrorCode::SessionNotFound, not_found, &name);
    assert_error(
        session.destroy(),
        ErrorCode::SessionNotFound,
        not_found,
        &name,
    );
    assert_error(session.info(), ErrorCode::SessionNotFound, not_found, &name);
    assert_error(
        session.snapshot_outputs(),
        ErrorCode::SessionNotFound,
        not_found,
        &name,
    );
    assert_error(
        session.record_snapshot(Some("x")),
        ErrorCode::SessionNotFound,
        not_found,
        &name,
    );
    // lttng-sessiond 2.13 answers a channel for an unknown session with
    // LTTNG_ERR_FATAL; the error still says which session it was.
    let err = ChannelBuilder::new("c", Domain::UserSpace)
        .enable(&session)
        .unwrap_err();
    assert!(err.context().contains(&name), "{err}");
    assert!(!session_names().contains(&name));
}

#[test]
fn snapshot_commands_on_a_normal_session_are_refused() {
    let _sessiond = ensure_sessiond();
    let out = TempDir::new("ctl-not-snapshot");
    let session = create(
        SessionBuilder::new(&session_name("not-snapshot"))
            .output(SessionOutput::Local(out.path().to_path_buf())),
    );
    let channel = ChannelBuilder::new("c", Domain::UserSpace)
        .enable(&session)
        .unwrap();
    EventBuilder::all().enable(&session, &channel).unwrap();
    session.start().unwrap();
    let message = "Snapshot command can't be applied to a non-snapshot session";
    let name = session.name();
    assert_error(
        session.record_snapshot(Some("x")),
        ErrorCode::NotSnapshotSession,
        message,
        name,
    );
    assert_error(
        session.record_snapshot_and_locate("x", None),
        ErrorCode::NotSnapshotSession,
        message,
        name,
    );
    assert_error(
        session.record_snapshot_to(&SnapshotOutput::local(out.path())),
        ErrorCode::NotSnapshotSession,
        message,
        name,
    );
    assert_error(
        session.add_snapshot_output(&SnapshotOutput::local(out.path())),
        ErrorCode::NotSnapshotSession,
        message,
        name,
    );
    assert_error(
        session.snapshot_outputs(),
        ErrorCode::NotSnapshotSession,
        message,
        name,
    );
}

#[test]
fn a_snapshot_session_without_outputs_fails_to_record() {
    let _sessiond = ensure_sessiond();
    let session = create(
        SessionBuilder::new(&session_name("no-output"))
            .snapshot()
            .output(SessionOutput::None),
    );
    let channel = ChannelBuilder::new("c", Domain::UserSpace)
        .enable(&session)
        .unwrap();
    EventBuilder::all().enable(&session, &channel).unwrap();
    session.start().unwrap();
    assert_error(
        session.record_snapshot(Some("x")),
        ErrorCode::SnapshotFailed,
        "Snapshot record failed",
        session.name(),
    );
}

#[test]
fn session_names_that_do_not_fit_are_rejected_not_truncated() {
    let _sessiond = ensure_sessiond();
    // The longest name LTTng takes works, whole.
    let longest = format!("{}-", session_name("long"));
    let longest = format!("{longest}{}", "x".repeat(254 - longest.len()));
    let session = create(
        SessionBuilder::new(&longest)
            .snapshot()
            .output(SessionOutput::None),
    );
    assert_eq!(session.info().unwrap().name, longest);
    session.destroy().unwrap();

    let too_long = format!("{longest}y");
    let err = SessionBuilder::new(&too_long).create().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Invalid, "{err}");
    assert!(err.message().contains("at most 254"), "{err}");
    assert_eq!(Session::from_name(&too_long).unwrap_err(), err);
    let prefix = &longest[..200];
    assert!(
        !session_names().iter().any(|n| n.starts_with(prefix)),
        "no session was created under a truncated name"
    );

    let err = SessionBuilder::new("ctl-a\0b").create().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Invalid, "{err}");
    let err = SessionBuilder::new(&format!("{}/x", session_name("slash")))
        .create()
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionInvalidChar, "{err}");
    assert_eq!(err.message(), "Invalid character found in session name");
}

#[test]
fn channel_output_and_snapshot_names_that_do_not_fit_are_rejected() {
    let _sessiond = ensure_sessiond();
    let out = TempDir::new("ctl-long-names");
    let (session, _channel) = flight_recorder("long-names", out.path());

    let channel_name = format!("{}{}", unique_name("ch"), "c".repeat(255));
    let err = ChannelBuilder::new(&channel_name, Domain::UserSpace)
        .enable(&session)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Invalid, "{err}");
    assert!(err.message().contains("at most 255"), "{err}");
    assert!(
        !lttng_list(&session).contains(&channel_name[..100]),
        "no channel was created under a truncated name"
    );

    let output_name = "o".repeat(SNAPSHOT_NAME_MAX + 1);
    let err = session
        .add_snapshot_output(&SnapshotOutput::local(out.path()).name(&output_name))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Invalid, "{err}");
    assert!(
        err.message()
            .contains(&format!("at most {SNAPSHOT_NAME_MAX}")),
        "{err}"
    );
    assert_eq!(session.snapshot_outputs().unwrap().len(), 1);

    session.start().unwrap();
    run_crasher(&unique_name("long-names"), 1);
    let err = session
        .record_snapshot(Some(&"s".repeat(SNAPSHOT_NAME_MAX + 1)))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Invalid, "{err}");
    let err = session
        .record_snapshot_and_locate(&"s".repeat(SNAPSHOT_NAME_MAX + 1), None)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Invalid, "{err}");
    // The longest snapshot name fits in the session daemon's directory name.
    let longest = "s".repeat(SNAPSHOT_NAME_MAX);
    let located = session.record_snapshot_and_locate(&longest, None).unwrap();
    assert_eq!(located.len(), 1);
    let names: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "only the snapshot that fits was recorded");
}

/// Runs the probe binary as `nobody`, with an empty LTTNG_HOME: liblttng-ctl
/// then looks for a per-user session daemon there (nobody is not root nor in
/// the tracing group), and none runs.
#[test]
fn no_session_daemon_is_reported_as_such() {
    let _sessiond = ensure_sessiond();
    let probe = env!("CARGO_BIN_EXE_lttng-ctl-probe");
    let name = session_name("probe");

    // Control: as root, the same probe reaches the root session daemon.
    let out = Command::new(probe).arg(&name).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["alive: Ok(true)", "list: ok", "create: ok", "destroy: ok"],
        "{stdout}"
    );

    let home = TempDir::new("ctl-nobody-home");
    let out = Command::new(probe)
        .arg(&name)
        .env_clear()
        .env("LTTNG_HOME", home.path())
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the probe must not panic: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let message = lttng_ctl::error::strerror(ErrorCode::NoSessionDaemon);
    assert_eq!(message, "No session daemon is available");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "alive: Ok(false)", "{stdout}");
    assert_eq!(
        lines[1],
        format!("list: NoSessionDaemon | {message} | listing sessions"),
        "{stdout}"
    );
    assert_eq!(
        lines[2],
        format!("create: NoSessionDaemon | {message} | creating session {name:?}"),
        "{stdout}"
    );
    assert_eq!(
        lines[3],
        format!("start: NoSessionDaemon | {message} | starting session {name:?}"),
        "{stdout}"
    );
    assert!(!session_names().contains(&name));
}
