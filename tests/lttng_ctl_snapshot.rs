//! lttng-ctl's flight recorder against the real session daemon, lttng-ust
//! and babeltrace2: the traced fixture's events reach a named snapshot, the
//! snapshot directories are named and found as documented, and snapshot
//! outputs are added, listed and removed.

use lttng_ctl::{
    ErrorCode, SessionBuilder, SessionOutput, SnapshotDestination, SnapshotLocation,
    SnapshotOutput, SnapshotOutputInfo,
};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testsupport::crasher::*;
use testsupport::sessions::{create, flight_recorder, session_name};
use testsupport::{babeltrace_events, ensure_sessiond, fixture_seqs, unique_name, TempDir};

/// The single local directory a record reported.
fn local_dir(locations: Vec<SnapshotLocation>) -> PathBuf {
    match locations.as_slice() {
        [SnapshotLocation::Local(dir)] => dir.clone(),
        other => panic!("expected one local snapshot directory, got {other:?}"),
    }
}

/// Checks `<parent>/<name>-<YYYYMMDD>-<HHMMSS>-<seq>`.
fn assert_snapshot_dir(dir: &Path, parent: &Path, name: &str, seq: u64) {
    assert_eq!(dir.parent(), Some(parent), "{}", dir.display());
    let file_name = dir.file_name().unwrap().to_str().unwrap();
    let rest = file_name
        .strip_prefix(&format!("{name}-"))
        .unwrap_or_else(|| panic!("{file_name} does not start with {name}-"));
    let parts: Vec<&str> = rest.split('-').collect();
    assert_eq!(parts.len(), 3, "{file_name}");
    assert_eq!(parts[0].len(), 8, "{file_name}: date");
    assert_eq!(parts[1].len(), 6, "{file_name}: time");
    assert!(
        parts[..2]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_digit())),
        "{file_name}"
    );
    assert_eq!(parts[2], seq.to_string(), "{file_name}: sequence number");
    assert!(dir.is_dir(), "{} is not a directory", dir.display());
}

/// The names of the entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn flight_recorder_round_trip_keeps_exactly_the_fixture_events() {
    let _sessiond = ensure_sessiond();
    let out = TempDir::new("ctl-roundtrip");
    let (session, _channel) = flight_recorder("roundtrip", out.path());
    session.start().unwrap();

    let tag = unique_name("rt");
    const COUNT: u32 = 40;
    run_crasher(&tag, COUNT);

    let dir = local_dir(session.record_snapshot_and_locate("crash", None).unwrap());
    assert_snapshot_dir(&dir, out.path(), "crash", 0);
    let events = babeltrace_events(&dir);
    assert_eq!(
        fixture_seqs(&events, &tag),
        (0..i64::from(COUNT)).collect::<Vec<_>>(),
        "the snapshot should hold the fixture's events in order:\n{}",
        events.join("\n")
    );
    let tagged = events
        .iter()
        .filter(|line| line.contains(&format!("tag = \"{tag}\"")))
        .count();
    assert_eq!(
        tagged, COUNT as usize,
        "no event with our tag but the fixture's"
    );

    session.stop().unwrap();
    session.destroy().unwrap();
}

#[test]
fn a_name_without_output_applies_to_the_sessions_output_for_one_record() {
    let _sessiond = ensure_sessiond();
    let out = TempDir::new("ctl-naming");
    let (session, _channel) = flight_recorder("naming", out.path());
    // A snapshot needs a session that was started once.
    let err = session.record_snapshot(Some("early")).unwrap_err();
    assert_eq!(err.message(), "Session needs to be started once", "{err}");
    session.start().unwrap();
    run_crasher(&unique_name("naming"), 3);

    session.record_snapshot(Some("first")).unwrap();
    session.record_snapshot(None).unwrap();
    let third = local_dir(session.record_snapshot_and_locate("third", None).unwrap());
    assert_snapshot_dir(&third, out.path(), "third", 2);

    // The sequence number counts the session's snapshots; without a name the
    // output's own name is used, and a name given once does not stick.
    let names = entries(out.path());
    assert_eq!(names.len(), 3, "{names:?}");
    assert_snapshot_dir(&out.path().join(&names[0]), out.path(), "first", 0);
    assert_snapshot_dir(&out.path().join(&names[1]), out.path(), "snapshot-1", 1);
    assert_eq!(names[2], third.file_name().unwrap().to_str().unwrap());
    assert_eq!(session.snapshot_outputs().unwrap()[0].name, "snapshot-1");
}

#[test]
fn one_off_outputs_receive_a_snapshot_without_being_added() {
    let _sessiond = ensure_sessiond();
    let out = TempDir::new("ctl-oneoff-session");
    let elsewhere = TempDir::new("ctl-oneoff");
    let (session, _channel) = flight_recorder("oneoff", out.path());
    session.start().unwrap();
    let tag = unique_name("oneoff");
    run_crasher(&tag, 5);

    let output = SnapshotOutput::local(elsewhere.path()).name("ignored");
    let dir = local_dir(
        session
            .record_snapshot_and_locate("oneoff", Some(&output))
            .unwrap(),
    );
    assert_snapshot_dir(&dir, elsewhere.path(), "oneoff", 0);
    assert_eq!(
        fixture_seqs(&babeltrace_events(&dir), &tag),
        vec![0, 1, 2, 3, 4]
    );

    session
        .record_snapshot_to(&SnapshotOutput::local(elsewhere.path()).name("plain"))
        .unwrap();
    let names = entries(elsewhere.path());
    assert_eq!(names.len(), 2, "{names:?}");
    assert_snapshot_dir(
        &elsewhere.path().join(&names[1]),
        elsewhere.path(),
        "plain",
        1,
    );

    // Neither one-off output was added, and the session's own saw nothing.
    let outputs = session.snapshot_outputs().unwrap();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert_eq!(outputs[0].local_path().as_deref(), Some(out.path()));
    assert_eq!(entries(out.path()), Vec::<String>::new());
}

/// A relay daemon of our own, on free local ports, killed when dropped.
struct Relayd {
    child: Child,
    control_port: u16,
    data_port: u16,
}

impl Relayd {
    fn start(output: &Path) -> Relayd {
        let ports: Vec<u16> = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect::<Vec<_>>()
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        let url = |port: u16| format!("tcp://127.0.0.1:{port}");
        let child = Command::new("lttng-relayd")
            .arg("-C")
            .arg(url(ports[0]))
            .arg("-D")
            .arg(url(ports[1]))
            .arg("-L")
            .arg(url(ports[2]))
            .arg("-o")
            .arg(output)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run lttng-relayd (apt-get install -y lttng-tools): {e}")
            });
        let relayd = Relayd {
            child,
            control_port: ports[0],
            data_port: ports[1],
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", relayd.control_port)).is_err() {
            assert!(Instant::now() < deadline, "lttng-relayd never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        relayd
    }

    fn url(&self) -> String {
        format!("net://127.0.0.1:{}:{}", self.control_port, self.data_port)
    }
}

impl Drop for Relayd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn relay_outputs_receive_the_snapshot_and_are_reported_by_url() {
    let _sessiond = ensure_sessiond();
    let out = TempDir::new("ctl-relay-session");
    let (session, _channel) = flight_recorder("relay", out.path());
    session.start().unwrap();
    let tag = unique_name("relay");
    run_crasher(&tag, 6);

    let received = TempDir::new("ctl-relayd");
    let relayd = Relayd::start(received.path());
    let output = SnapshotOutput::relay(&relayd.url());
    let locations = session
        .record_snapshot_and_locate("relayed", Some(&output))
        .unwrap();
    assert_eq!(
        locations,
        vec![SnapshotLocation::Relay {
            ctrl_url: relayd.url(),
            data_url: String::new(),
        }]
    );
    // babeltrace2 finds the trace wherever below its root the relay put it.
    assert_eq!(
        fixture_seqs(&babeltrace_events(received.path()), &tag),
        vec![0, 1, 2, 3, 4, 5]
    );

    // With the relay daemon gone the record fails, and says what it tried.
    drop(relayd);
    let err = session
        .record_snapshot_and_locate("relayed", Some(&output))
        .unwrap_err();
    assert!(err.context().contains("relayed"), "{err}");
    assert_eq!(entries(out.path()), Vec::<String>::new());
}

#[test]
fn snapshot_outputs_are_added_listed_and_removed() {
    let _sessiond = ensure_sessiond();
    let dir = TempDir::new("ctl-outputs");
    let session = create(
        SessionBuilder::new(&session_name("outputs"))
            .snapshot()
            .output(SessionOutput::None),
    );
    assert_eq!(session.snapshot_outputs().unwrap(), vec![]);

    let local = SnapshotOutput::local(dir.path())
        .name("crash")
        .max_size(1 << 20);
    let id = session.add_snapshot_output(&local).unwrap();
    assert_eq!(
        session.snapshot_outputs().unwrap(),
        vec![SnapshotOutputInfo {
            id,
            name: "crash".into(),
            ctrl_url: dir.path().display().to_string(),
            data_url: String::new(),
            max_size: 1 << 20,
        }]
    );
    // LTTng 2.13 keeps one output per session.
    let err = session
        .add_snapshot_output(&SnapshotOutput::local(dir.path()))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::SnapshotOutputExists, "{err}");

    session.remove_snapshot_output(id).unwrap();
    assert_eq!(session.snapshot_outputs().unwrap(), vec![]);
    let err = session.remove_snapshot_output(id).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Invalid, "{err}");

    // Adding a relay output does not connect to it yet.
    let relay = SnapshotOutput::relay("net://127.0.0.1:6342:6343").name("relay4");
    let relay_id = session.add_snapshot_output(&relay).unwrap();
    assert_ne!(relay_id, id, "ids are not reused");
    let outputs = session.snapshot_outputs().unwrap();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert_eq!(outputs[0].name, "relay4");
    assert_eq!(outputs[0].ctrl_url, "tcp4://127.0.0.1:6342/");
    assert_eq!(outputs[0].data_url, "tcp4://127.0.0.1:6343/");
    assert_eq!(outputs[0].max_size, 0, "no limit unless one is set");
    assert_eq!(outputs[0].local_path(), None);
    session.remove_snapshot_output_named("relay4").unwrap();
    assert_eq!(session.snapshot_outputs().unwrap(), vec![]);

    let relay6 = SnapshotOutput::new(SnapshotDestination::RelayUrls {
        control_url: "tcp6://[::1]:6342".into(),
        data_url: "tcp6://[::1]:6343".into(),
    })
    .name("relay6");
    session.add_snapshot_output(&relay6).unwrap();
    let outputs = session.snapshot_outputs().unwrap();
    assert_eq!(outputs[0].ctrl_url, "tcp6://[::1]:6342/");
    assert_eq!(outputs[0].data_url, "tcp6://[::1]:6343/");
    session.remove_snapshot_output_named("relay6").unwrap();
    let err = session.remove_snapshot_output_named("relay6").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Invalid, "{err}");

    let err = session
        .add_snapshot_output(&SnapshotOutput::relay("file:///tmp"))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Invalid, "{err}");
    assert_eq!(session.snapshot_outputs().unwrap(), vec![]);
}
