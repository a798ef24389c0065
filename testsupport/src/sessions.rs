//! Tracing sessions in the shared root session daemon that clean up after
//! themselves: through the lttng CLI (as a C program's user would set one
//! up) or through the `lttng-ctl` crate.

use crate::lttng_cli::{lttng, lttng_ok};
use crate::sessiond::{ensure_sessiond, RootSessiondUse};
use crate::temp::{unique_name, TempDir};
use lttng_ctl::{
    BufferType, Channel, ChannelBuilder, Domain, EventBuilder, Session, SessionBuilder,
    SessionOutput,
};
use std::fs;
use std::path::{Path, PathBuf};

/// The crasher's events, as tests enable them.
pub const CRASHER_EVENTS: &str = "lttng_coredump:step";

/// A root-daemon session created for one test, destroyed (with any
/// OnAnyCoreDump trigger naming it) when dropped.
pub struct TestSession {
    pub name: String,
    pub output: TempDir,
    // The root daemon is kept until the session is gone.
    _sessiond: RootSessiondUse,
}

impl TestSession {
    /// A started snapshot-mode session recording the crasher's events.
    pub fn snapshot(prefix: &str) -> TestSession {
        let sessiond = ensure_sessiond();
        let name = unique_name(prefix);
        let output = TempDir::new(prefix);
        lttng_ok(&[
            "create",
            &name,
            "--snapshot",
            "-o",
            &output.path().display().to_string(),
        ]);
        let session = TestSession {
            name,
            output,
            _sessiond: sessiond,
        };
        lttng_ok(&[
            "enable-event",
            "-u",
            "lttng_coredump:step",
            "-s",
            &session.name,
        ]);
        track_only_uid(&session.name, 0);
        lttng_ok(&["start", &session.name]);
        session
    }

    /// `lttng list`'s line about this session.
    pub fn status_line(&self) -> String {
        lttng_ok(&["list"])
            .lines()
            .find(|l| l.contains(&format!(" {} ", self.name)))
            .unwrap_or_else(|| panic!("session {} is not listed", self.name))
            .to_string()
    }

    /// The snapshot directories in the session's output.
    pub fn snapshot_dirs(&self) -> Vec<PathBuf> {
        snapshot_dirs(self.output.path())
    }
}

impl Drop for TestSession {
    fn drop(&mut self) {
        for name in [
            format!("lttng-coredump:snapshot:{}", self.name),
            format!("lttng-coredump:stop:{}", self.name),
        ] {
            let _ = lttng(&["remove-trigger", &name]);
        }
        let _ = lttng(&["destroy", &self.name]);
    }
}

/// A session destroyed when dropped (also when the test panics), so that
/// tests leave nothing in the shared session daemon.
pub struct Cleanup {
    pub session: Session,
    // Last: the root daemon is kept until the session is gone.
    _sessiond: RootSessiondUse,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Already destroyed by the test, or never created: both fine.
        let _ = self.session.destroy();
    }
}

impl std::ops::Deref for Cleanup {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

/// A fresh session name for this branch's tests.
pub fn session_name(what: &str) -> String {
    unique_name(&format!("ctl-{what}"))
}

/// Creates a session with `builder` and arranges its destruction.
pub fn create(builder: SessionBuilder) -> Cleanup {
    let sessiond = ensure_sessiond();
    Cleanup {
        session: builder.create().expect("creating the session"),
        _sessiond: sessiond,
    }
}

/// A snapshot session writing to `out`, with a per-user overwrite channel in
/// which the fixture's events are enabled; not started.
pub fn flight_recorder(what: &str, out: &Path) -> (Cleanup, Channel) {
    let session = create(
        SessionBuilder::new(&session_name(what))
            .snapshot()
            .output(SessionOutput::Local(out.to_path_buf())),
    );
    let channel = ChannelBuilder::new("flight", Domain::UserSpace)
        .overwrite()
        .buffer_type(BufferType::PerUid)
        .subbuf_size(64 * 1024)
        .num_subbuf(4)
        .enable(&session)
        .expect("enabling the channel");
    EventBuilder::named("lttng_coredump:step")
        .enable(&session, &channel)
        .expect("enabling the fixture's events");
    track_only_uid(session.name(), 0);
    (session, channel)
}

/// The `lttng track` arguments that make a session of the shared root
/// daemon trace the applications of `uid` alone. Every user's application
/// registers with the root daemon, so without them a session also gets the
/// per-uid buffers of other tests' crashers (test users) that run at the
/// same time; one of those that registers while the session's snapshot is
/// taken leaves a stream whose stream class the snapshot's metadata does not
/// declare yet, and babeltrace2 refuses the whole snapshot. Seen once in CI
/// (`ust/uid/1001/64-bit/flight_1`, "No stream class with ID 0").
pub fn track_only_uid_args(session: &str, uid: u32) -> Vec<String> {
    ["track", "-u", "--vuid", &uid.to_string(), "-s", session]
        .map(str::to_owned)
        .to_vec()
}

/// Makes `session` (root daemon) trace `uid`'s applications alone; see
/// [`track_only_uid_args`].
pub fn track_only_uid(session: &str, uid: u32) {
    let args = track_only_uid_args(session, uid);
    lttng_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// A started [`flight_recorder`] (the crasher's events recorded into it
/// from now on), destroyed when dropped.
pub fn started_flight_recorder(what: &str, out: &Path) -> Cleanup {
    let (session, _channel) = flight_recorder(what, out);
    session.start().expect("starting the session");
    session
}

/// Whether the session named `name` is active (tracing), as the session
/// daemon lists it.
pub fn is_active(name: &str) -> bool {
    Session::from_name(name)
        .and_then(|s| s.info())
        .expect("the session's state")
        .enabled
}

/// `lttng list SESSION`, for inspecting what the session daemon made of
/// our requests.
pub fn lttng_list(session: &Session) -> String {
    lttng_ok(&["list", session.name()])
}

/// The snapshot directories in a snapshot session's output `dir`, sorted
/// (their names start with the snapshot's name and date).
pub fn snapshot_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs
}
