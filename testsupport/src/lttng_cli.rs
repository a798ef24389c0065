//! The lttng command-line tool, for test set-up and inspection only (the
//! project itself never spawns it).

use std::process::{Command, Output, Stdio};

/// Runs the lttng command-line tool (for test set-up and inspection only;
/// the project itself never spawns it).
pub fn lttng(args: &[&str]) -> Output {
    Command::new("lttng")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run lttng (apt-get install -y lttng-tools): {e}"))
}

/// Runs the lttng CLI and returns its stdout, panicking when it fails.
pub fn lttng_ok(args: &[&str]) -> String {
    let out = lttng(args);
    assert!(
        out.status.success(),
        "lttng {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
