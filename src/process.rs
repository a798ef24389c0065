//! Running programs the tests start, with a bound on how long they may
//! take.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `command` to its end, killing it after `timeout`.
pub fn run_bounded(command: &mut Command, timeout: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("{command:?} still running after {timeout:?}: {output:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a program and returns its output (whatever its exit status).
pub fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()))
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A process the test created and owns until dropped (`sleep`), for a test
/// that hands the handler a PID: the handler reads `/proc/PID`, so the PID
/// must be one whose process the test knows, never a literal one (which
/// names whatever the machine runs there).
pub struct StandIn(std::process::Child);

impl StandIn {
    pub fn start() -> StandIn {
        StandIn(
            Command::new("sleep")
                .arg("3600")
                .stdin(Stdio::null())
                .spawn()
                .expect("running sleep"),
        )
    }

    /// Its PID, as the kernel's `%P` gives it.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
