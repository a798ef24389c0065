//! Test helper for tests/lttng_ctl_errors.rs: makes a few lttng-ctl calls
//! and prints one line per call, `CALL: ok` or `CALL: CODE | MESSAGE |
//! CONTEXT`, so a test can run it as another user, in another environment,
//! and check what each call reported. Exits 0 unless it panicked.
//!
//! Usage: lttng-ctl-probe SESSION_NAME

use lttng_ctl::{list_sessions, session_daemon_alive, SessionBuilder, SessionOutput};

fn report<T>(call: &str, result: lttng_ctl::Result<T>) {
    match result {
        Ok(_) => println!("{call}: ok"),
        Err(err) => println!(
            "{call}: {:?} | {} | {}",
            err.code(),
            err.message(),
            err.context()
        ),
    }
}

fn main() {
    let name = std::env::args()
        .nth(1)
        .expect("usage: lttng-ctl-probe SESSION_NAME");
    println!("alive: {:?}", session_daemon_alive());
    report("list", list_sessions());
    let created = SessionBuilder::new(&name)
        .snapshot()
        .output(SessionOutput::None)
        .create();
    let session = created.as_ref().ok().cloned();
    report("create", created);
    if let Some(session) = session {
        report("destroy", session.destroy());
    } else {
        report(
            "start",
            lttng_ctl::Session::from_name(&name).and_then(|s| s.start()),
        );
    }
}
