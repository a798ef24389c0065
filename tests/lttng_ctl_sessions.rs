//! lttng-ctl against the real session daemon: sessions of every kind and
//! output, their listed state through start, stop and destroy, and channels
//! and events as the session daemon records them.

use lttng_ctl::{
    list_sessions, session_daemon_alive, BufferType, Channel, ChannelBuilder, Domain, ErrorCode,
    EventBuilder, LogLevelFilter, Session, SessionBuilder, SessionInfo, SessionOutput,
};
use std::time::{Duration, Instant};
use testsupport::sessions::{create, lttng_list, session_name};
use testsupport::{ensure_sessiond, TempDir};

fn listed(session: &Session) -> Option<SessionInfo> {
    list_sessions()
        .expect("listing sessions")
        .into_iter()
        .find(|info| info.name == session.name())
}

fn fixture_channel(session: &Session) -> Channel {
    let channel = ChannelBuilder::new("chan", Domain::UserSpace)
        .discard()
        .enable(session)
        .expect("enabling a channel");
    EventBuilder::named("lttng_coredump:step")
        .enable(session, &channel)
        .expect("enabling events");
    channel
}

#[test]
fn a_session_daemon_is_alive() {
    let _sessiond = ensure_sessiond();
    assert_eq!(session_daemon_alive(), Ok(true));
}

#[test]
fn sessions_list_their_state_through_start_stop_and_destroy() {
    let _sessiond = ensure_sessiond();
    let out = TempDir::new("ctl-states");
    let session = create(
        SessionBuilder::new(&session_name("states"))
            .output(SessionOutput::Local(out.path().to_path_buf())),
    );
    let info = listed(&session).expect("a created session is listed");
    assert_eq!(
        info,
        SessionInfo {
            name: session.name().to_owned(),
            output: out.path().display().to_string(),
            enabled: false,
            snapshot_mode: false,
            live_timer_interval_us: 0,
        }
    );
    assert_eq!(session.info().unwrap(), info);

    fixture_channel(&session);
    session.start().unwrap();
    assert!(session.info().unwrap().enabled);
    assert_eq!(
        session.start().unwrap_err().code(),
        ErrorCode::AlreadyStarted
    );

    session.stop().unwrap();
    assert!(!session.info().unwrap().enabled);
    assert_eq!(
        session.stop().unwrap_err().code(),
        ErrorCode::AlreadyStopped
    );

    session.start().unwrap();
    session.stop_no_wait().unwrap();
    assert!(!session.info().unwrap().enabled);

    session.start().unwrap();
    // Destroying a started session stops it first.
    session.destroy().unwrap();
    assert_eq!(listed(&session), None);
    assert_eq!(
        session.info().unwrap_err().code(),
        ErrorCode::SessionNotFound
    );
    assert_eq!(
        session.destroy().unwrap_err().code(),
        ErrorCode::SessionNotFound
    );
}

#[test]
fn snapshot_sessions_with_a_path_the_default_output_or_none() {
    let _sessiond = ensure_sessiond();
    let out = TempDir::new("ctl-snapmodes");
    let with_path = create(
        SessionBuilder::new(&session_name("snap-path"))
            .snapshot()
            .output(SessionOutput::Local(out.path().to_path_buf())),
    );
    let info = with_path.info().unwrap();
    assert!(info.snapshot_mode);
    assert!(!info.enabled);
    // A snapshot session's path is its snapshot output, not the session's.
    assert_eq!(info.output, "");
    let outputs = with_path.snapshot_outputs().unwrap();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert_eq!(outputs[0].ctrl_url, out.path().display().to_string());
    assert_eq!(outputs[0].local_path().as_deref(), Some(out.path()));
    assert_eq!(outputs[0].name, "snapshot-1");

    let default = create(
        SessionBuilder::new(&session_name("snap-default"))
            .snapshot()
            .output(SessionOutput::Default),
    );
    assert!(default.info().unwrap().snapshot_mode);
    let outputs = default.snapshot_outputs().unwrap();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    let default_dir = format!("/lttng-traces/{}-", default.name());
    assert!(
        outputs[0].ctrl_url.contains(&default_dir),
        "{outputs:?} should be under {default_dir}"
    );

    let without = create(
        SessionBuilder::new(&session_name("snap-none"))
            .snapshot()
            .output(SessionOutput::None),
    );
    assert!(without.info().unwrap().snapshot_mode);
    assert_eq!(without.snapshot_outputs().unwrap(), vec![]);
}

#[test]
fn normal_and_live_sessions_list_their_output() {
    let _sessiond = ensure_sessiond();
    let default = create(SessionBuilder::new(&session_name("default")));
    let info = default.info().unwrap();
    assert!(
        info.output
            .contains(&format!("/lttng-traces/{}-", default.name())),
        "{info:?}"
    );
    assert!(!info.snapshot_mode);

    let none = create(SessionBuilder::new(&session_name("none")).output(SessionOutput::None));
    assert_eq!(none.info().unwrap().output, "");

    // No relay daemon is needed until the session starts.
    let network = create(SessionBuilder::new(&session_name("net")).output(
        SessionOutput::Network {
            control_url: "net://127.0.0.1:5342:5343".into(),
            data_url: None,
        },
    ));
    let output = network.info().unwrap().output;
    assert!(output.starts_with("tcp4://127.0.0.1:5342/"), "{output}");
    assert!(output.contains("5343"), "{output}");

    let live = create(
        SessionBuilder::new(&session_name("live"))
            .live(Duration::from_millis(250))
            .output(SessionOutput::None),
    );
    let info = live.info().unwrap();
    assert_eq!(info.live_timer_interval_us, 250_000);
    assert!(!info.snapshot_mode);
}

#[test]
fn sessions_are_destroyed_with_a_timeout_or_without_waiting() {
    let _sessiond = ensure_sessiond();
    let timed =
        create(SessionBuilder::new(&session_name("destroy-timed")).output(SessionOutput::None));
    fixture_channel(&timed);
    timed.start().unwrap();
    timed.destroy_with_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(listed(&timed), None);

    let unwaited =
        create(SessionBuilder::new(&session_name("destroy-nowait")).output(SessionOutput::None));
    unwaited.destroy_no_wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while listed(&unwaited).is_some() {
        assert!(Instant::now() < deadline, "the session was never destroyed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn channels_and_events_get_the_settings_asked_for() {
    let _sessiond = ensure_sessiond();
    let session = create(
        SessionBuilder::new(&session_name("channels"))
            .snapshot()
            .output(SessionOutput::None),
    );
    let channel = ChannelBuilder::new("per-pid", Domain::UserSpace)
        .buffer_type(BufferType::PerPid)
        .discard()
        .subbuf_size(8192)
        .num_subbuf(2)
        .switch_timer(Duration::from_millis(100))
        .enable(&session)
        .unwrap();
    assert_eq!(channel.buffer_type(), BufferType::PerPid);
    EventBuilder::named("lttng_coredump:step")
        .log_level(LogLevelFilter::AtLeastAsSevereAs(4))
        .enable(&session, &channel)
        .unwrap();
    EventBuilder::named("other_provider:exact")
        .log_level(LogLevelFilter::Exactly(6))
        .enable(&session, &channel)
        .unwrap();
    let listing = lttng_list(&session);
    for expected in [
        "Buffering scheme: per-process",
        "- per-pid: [enabled]",
        "Event-loss mode:  discard",
        "Sub-buffer size:  8192 bytes",
        "Sub-buffer count: 2",
        "Switch timer:     100000 us",
        "lttng_coredump:step (loglevel <= TRACE_WARNING (4))",
        "other_provider:exact (loglevel == TRACE_INFO (6))",
    ] {
        assert!(
            listing.contains(expected),
            "{expected:?} not in:\n{listing}"
        );
    }

    // A session has one buffer scheme per domain.
    let err = ChannelBuilder::new("per-uid", Domain::UserSpace)
        .buffer_type(BufferType::PerUid)
        .enable(&session)
        .unwrap_err();
    assert_eq!(err.message(), "Buffer type mismatch for session", "{err}");
    assert!(err.context().contains("per-uid"), "{err}");

    let all = create(
        SessionBuilder::new(&session_name("overwrite"))
            .snapshot()
            .output(SessionOutput::None),
    );
    let channel = ChannelBuilder::new("ring", Domain::UserSpace)
        .overwrite()
        .enable(&all)
        .unwrap();
    EventBuilder::all().enable(&all, &channel).unwrap();
    let listing = lttng_list(&all);
    for expected in [
        "Buffering scheme: per-user",
        "Event-loss mode:  overwrite",
        "* (type: tracepoint) [enabled]",
    ] {
        assert!(
            listing.contains(expected),
            "{expected:?} not in:\n{listing}"
        );
    }

    // The kernel domain reaches the session daemon as such: with a daemon
    // that has no kernel tracer (this project's tests run one with
    // --no-kernel) it says so; with one, the channel exists.
    match ChannelBuilder::new("kernel", Domain::Kernel).enable(&all) {
        // lttng-sessiond 2.13 --no-kernel answers "Kernel tracer not
        // available"; once, under a fully parallel suite, it answered with
        // its generic fatal error instead (seen in a CI run, not reproduced
        // by hand). Either is the daemon refusing the kernel domain.
        Err(err) => assert!(
            matches!(
                err.code(),
                ErrorCode::KernelTracerUnavailable | ErrorCode::Fatal
            ),
            "{err}"
        ),
        Ok(channel) => {
            assert_eq!(channel.buffer_type(), BufferType::Global);
            assert!(lttng_list(&all).contains("- kernel: [enabled]"));
        }
    }
}
