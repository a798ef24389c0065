//! The project's crashing program (`programs/crasher.c`, built by
//! `build.rs`), run the one way every test runs it.

use crate::process::spawn_printing_pid;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long lttng-ust may take to register with the session daemons: it
/// gives up after 3 s by default and then traces nothing, which a loaded
/// machine can exceed.
pub const REGISTER_TIMEOUT_MS: &str = "30000";

/// The crasher: `crasher [--gate] [--more N] [--stamp-fd FD] [--story] TAG
/// COUNT exit|segv|abort [FILL_MIB [zero|random]] [NAME]`, emitting COUNT
/// `lttng_coredump:step` events (`seq` 0..COUNT-1, `tag`), printing
/// `ready <pid>`, then (after the `--gate` line) N more (`seq`
/// COUNT..COUNT+N-1).
pub fn crasher_path() -> PathBuf {
    PathBuf::from(env!("FIXTURE_CRASHER"))
}

/// A command running the crasher (add its arguments), with the
/// registration timeout a loaded machine needs. Every test runs the
/// crasher through this (or [`crate::users::TestUser::crasher_command`]).
pub fn crasher_command() -> Command {
    traced_command(crasher_path())
}

/// A command running `program` (the crasher, or a copy of it under another
/// path), with the registration timeout.
pub fn traced_command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    command.env("LTTNG_UST_REGISTER_TIMEOUT", REGISTER_TIMEOUT_MS);
    command
}

/// The pid the crasher printed (`ready PID`).
pub fn ready_pid(output: &Output) -> i32 {
    parse_ready(&String::from_utf8_lossy(&output.stdout))
        .unwrap_or_else(|| panic!("the crasher printed no pid: {output:?}"))
}

/// The pid in the crasher's `ready PID` line, if `text` has one.
pub fn parse_ready(text: &str) -> Option<i32> {
    text.lines()
        .find_map(|line| line.strip_prefix("ready "))
        .and_then(|pid| pid.trim().parse().ok())
}

/// Runs the crasher to a normal exit, emitting `count` events tagged
/// `tag`; returns its pid.
pub fn run_crasher(tag: &str, count: u32) -> u32 {
    let out = crasher_command()
        .args([tag, &count.to_string(), "exit"])
        .stdin(Stdio::null())
        .output()
        .expect("running the crasher");
    assert!(
        out.status.success(),
        "the crasher failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ready_pid(&out) as u32
}

/// A command running the crasher as `uid`/`gid` with no supplementary group
/// (add its arguments), with the registration timeout.
pub fn crasher_as(uid: u32, gid: u32) -> Command {
    traced_command_as(uid, gid, crasher_path())
}

/// [`traced_command`] as `uid`/`gid` with no supplementary group.
pub fn traced_command_as(uid: u32, gid: u32, program: impl AsRef<OsStr>) -> Command {
    let mut command = command_as(uid, gid, program);
    command.env("LTTNG_UST_REGISTER_TIMEOUT", REGISTER_TIMEOUT_MS);
    command
}

/// `program` run as `uid`/`gid` with no supplementary group (`setpriv`;
/// the environment as it is): add its arguments.
pub fn command_as(uid: u32, gid: u32, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--clear-groups",
            "--",
        ])
        .arg(program);
    command
}

/// Starts `command`, a program that prints `ready PID` and then waits for
/// a line on its stdin before it crashes (the crasher's `--gate`), so that
/// a whole storm can be let go at once; returns it once it is ready.
pub fn spawn_gated(command: &mut Command) -> (Child, i32) {
    spawn_printing_pid(command.stdin(Stdio::piped()).stderr(Stdio::null()))
}

/// Waits for a crashing `child` to end (the kernel reports the crash once
/// its handler is done), until `deadline`.
pub fn wait_for_crash(child: &mut Child, deadline: Instant) {
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "a crash never ended");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A set-uid-root test program (`tests/fixtures/setuid_dumpable.c`) that
/// reads a root-only file, makes itself dumpable again
/// (`prctl(PR_SET_DUMPABLE, 1)`) and crashes: `setuid_dumpable SECRET_FILE`,
/// printing `ready <pid>`. Copy it and make the copy set-uid root.
pub fn setuid_dumpable_path() -> PathBuf {
    PathBuf::from(env!("FIXTURE_SETUID_DUMPABLE"))
}

/// The crasher with `--gate` and `args` (TAG COUNT ...), started and
/// traced: it crashes once "go" is written to its stdin. Its pid, read from
/// its `ready` line.
pub fn gated_crasher(args: &[&str]) -> (Child, i32) {
    let mut child = crasher_command()
        .arg("--gate")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let pid = line
        .strip_prefix("ready ")
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("the crasher printed {line:?}"));
    (child, pid)
}
