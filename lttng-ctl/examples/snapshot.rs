//! A flight recorder end to end: creates a snapshot session with a user-space
//! channel, enables events, starts tracing, runs a traced program, records a
//! named snapshot and prints where it went, then destroys the session.
//!
//! Needs a session daemon (`lttng-sessiond --daemonize --no-kernel`) and, to
//! build the traced program, a C compiler and liblttng-ust-dev.
//!
//! ```text
//! cargo run -p lttng-ctl --example snapshot                 # traces the project's C fixture
//! cargo run -p lttng-ctl --example snapshot -- PROGRAM ARGS # traces PROGRAM instead
//! ```
//!
//! Then read the trace with `babeltrace2 <printed directory>`.

use lttng_ctl::{
    session_daemon_alive, BufferType, ChannelBuilder, Domain, EventBuilder, Session,
    SessionBuilder, SessionOutput, SnapshotLocation,
};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;

type BoxResult<T> = Result<T, Box<dyn Error>>;

fn main() -> BoxResult<()> {
    if !session_daemon_alive()? {
        return Err(
            "no session daemon: start one with `lttng-sessiond --daemonize --no-kernel`".into(),
        );
    }
    let work_dir = std::env::temp_dir().join(format!("lttng-ctl-example-{}", std::process::id()));
    std::fs::create_dir_all(&work_dir)?;

    let mut args = std::env::args_os().skip(1);
    let (program, program_args, events) = match args.next() {
        Some(program) => (PathBuf::from(program), args.collect(), "*"),
        None => (
            build_fixture(&work_dir)?,
            vec!["example".into(), "10".into(), "exit".into()],
            "lttng_coredump:step",
        ),
    };

    let session_name = format!("lttng-ctl-example-{}", std::process::id());
    let session = SessionBuilder::new(&session_name)
        .snapshot()
        .output(SessionOutput::Local(work_dir.join("snapshots")))
        .create()?;
    // Destroy the session however the rest goes.
    let result = trace_and_snapshot(&session, events, &program, &program_args);
    session.destroy()?;
    for location in result? {
        match location {
            SnapshotLocation::Local(dir) => println!("snapshot written to {}", dir.display()),
            SnapshotLocation::Relay { ctrl_url, .. } => {
                println!("snapshot sent to the relay daemon at {ctrl_url}")
            }
        }
    }
    Ok(())
}

fn trace_and_snapshot(
    session: &Session,
    events: &str,
    program: &Path,
    program_args: &[std::ffi::OsString],
) -> BoxResult<Vec<SnapshotLocation>> {
    // Per-user buffers outlive the traced process, so its events are still
    // there when the snapshot is recorded after it exits.
    let channel = ChannelBuilder::new("example", Domain::UserSpace)
        .overwrite()
        .buffer_type(BufferType::PerUid)
        .subbuf_size(64 * 1024)
        .num_subbuf(4)
        .enable(session)?;
    EventBuilder::named(events).enable(session, &channel)?;
    session.start()?;

    let status = Command::new(program).args(program_args).status()?;
    println!("{} exited with {status}", program.display());

    Ok(session.record_snapshot_and_locate("example", None)?)
}

/// Compiles the project's traced crashing program (programs/crasher.c).
fn build_fixture(work_dir: &Path) -> BoxResult<PathBuf> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs");
    let exe = work_dir.join("crasher");
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let status = Command::new(&cc)
        .arg("-I")
        .arg(&fixtures)
        .arg(fixtures.join("crasher.c"))
        .arg("-o")
        .arg(&exe)
        .args(["-llttng-ust", "-ldl"])
        .status()
        .map_err(|e| format!("cannot run the C compiler {cc:?}: {e}"))?;
    if !status.success() {
        return Err(
            "compiling the traced fixture failed (apt-get install -y liblttng-ust-dev)".into(),
        );
    }
    Ok(exe)
}
