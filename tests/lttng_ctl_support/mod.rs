//! Helpers shared by the `lttng_ctl_*` system tests: sessions that destroy
//! themselves, and the traced fixture run to completion.

#![allow(dead_code)] // each test file uses its own subset

use lttng_ctl::{
    BufferType, Channel, ChannelBuilder, Domain, EventBuilder, Session, SessionBuilder,
    SessionOutput,
};
use std::path::Path;
use std::process::Command;
use testsupport::{crasher_path, unique_name};

/// A session destroyed when dropped (also when the test panics), so that
/// tests leave nothing in the shared session daemon.
pub struct Cleanup(pub Session);

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Already destroyed by the test, or never created: both fine.
        let _ = self.0.destroy();
    }
}

impl std::ops::Deref for Cleanup {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.0
    }
}

/// A fresh session name for this branch's tests.
pub fn session_name(what: &str) -> String {
    unique_name(&format!("ctl-{what}"))
}

/// Creates a session with `builder` and arranges its destruction.
pub fn create(builder: SessionBuilder) -> Cleanup {
    Cleanup(builder.create().expect("creating the session"))
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
    EventBuilder::named("lttng_coredump_test:*")
        .enable(&session, &channel)
        .expect("enabling the fixture's events");
    (session, channel)
}

/// Runs the traced fixture to a normal exit, emitting `count` events tagged
/// `tag`.
pub fn run_fixture(tag: &str, count: u32) {
    let out = Command::new(crasher_path())
        .args([tag, &count.to_string(), "exit"])
        // lttng-ust gives up registering with the session daemon after 3 s
        // by default and then traces nothing; a loaded machine can be slower.
        .env("LTTNG_UST_REGISTER_TIMEOUT", "30000")
        .output()
        .expect("running the traced fixture");
    assert!(
        out.status.success(),
        "the fixture failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `lttng list SESSION`, for inspecting what the session daemon made of
/// our requests.
pub fn lttng_list(session: &Session) -> String {
    testsupport::lttng_ok(&["list", session.name()])
}
