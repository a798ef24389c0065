//! Running programs the tests start, with a bound on how long they may
//! take.

use std::io::{BufRead, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `command` to its end, killing it after `timeout`. Its output is
/// read while it runs (one thread a pipe), so a command that prints more
/// than a pipe holds is never blocked on its own output until the deadline.
pub fn run_bounded(command: &mut Command, timeout: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let status = child.wait().unwrap();
            let output = Output {
                status,
                stdout: stdout.join().expect("stdout reader"),
                stderr: stderr.join().expect("stderr reader"),
            };
            panic!("{command:?} still running after {timeout:?}: {output:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The readers end when every holder of the pipes' write ends has closed
    // them: the command, and any process it left behind holding them.
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Reads `pipe` to its end on a thread of its own.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Starts `command`, whose first output line ends with its pid (`echo $$`,
/// the crasher's `ready PID`); returns it, still running, and that pid.
pub fn spawn_printing_pid(command: &mut Command) -> (Child, i32) {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid = line
        .split_whitespace()
        .last()
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid printed by {command:?}: {line:?}"));
    (child, pid)
}

/// Runs a program and returns its output (whatever its exit status).
pub fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()))
}

/// What a command printed, stdout then stderr.
pub fn output_text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
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

/// A process: its pid and start time (field 22 of /proc/PID/stat), so that
/// a reused pid is never taken for it.
pub type ProcessId = (i32, u64);

/// `pid` with its start time, if it runs (a zombie counts as gone).
pub fn process_id(pid: i32) -> Option<ProcessId> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name, in parentheses, may hold anything: fields follow the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    Some((pid, fields.get(19)?.parse().ok()?))
}

/// The name of process `pid` (/proc/PID/comm).
pub fn process_name(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|name| name.trim_end().to_owned())
}

/// Every running process: its id, name, parent and owner.
pub fn processes() -> Vec<(ProcessId, String, i32, u32)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("reading /proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let (Some(id), Some(name)) = (process_id(pid), process_name(pid)) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let field = |key: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .and_then(|value| value.split_whitespace().next())
                .and_then(|value| value.parse::<i64>().ok())
        };
        if let (Some(ppid), Some(uid)) = (field("PPid:"), field("Uid:")) {
            all.push((id, name, ppid as i32, uid as u32));
        }
    }
    all
}

/// `root` and its descendants, `root` first.
pub fn process_tree(root: ProcessId) -> Vec<ProcessId> {
    let all = processes();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i].0;
        tree.extend(
            all.iter()
                .filter(|(id, _, ppid, _)| *ppid == parent && !tree.contains(id))
                .map(|(id, ..)| *id)
                .collect::<Vec<_>>(),
        );
        i += 1;
    }
    tree
}

/// The processes whose parent is `parent`: their pids and names.
pub fn children_of(parent: i32) -> Vec<(i32, String)> {
    processes()
        .into_iter()
        .filter(|(_, _, ppid, _)| *ppid == parent)
        .map(|((pid, _), name, ..)| (pid, name))
        .collect()
}

/// Sends `signal` to `pid`, a process the test started (or one of its
/// daemons' children); false when it is gone.
pub fn signal(pid: i32, signal: libc::c_int) -> bool {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// Copies a program to `to` (mode and all) so that it can be run at once.
///
/// Not with `fs::copy`: while this test process holds the new file open for
/// writing, any thread of the suite that forks a child lends it that
/// descriptor until the child's exec, and running the copy meanwhile fails
/// with "Text file busy" (ETXTBSY). `cp` holds it in a process of its own,
/// which has exited when this returns.
pub fn copy_executable(from: impl AsRef<Path>, to: impl AsRef<Path>) {
    let (from, to) = (from.as_ref(), to.as_ref());
    let out = Command::new("cp")
        .arg("--")
        .arg(from)
        .arg(to)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run cp: {e}"));
    assert!(
        out.status.success(),
        "cp {} {}: {}",
        from.display(),
        to.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `make()`'s command under exactly `pid` (a pid freed before: its
/// process exited and was reaped), by setting the last pid the kernel
/// handed out (`/proc/sys/kernel/ns_last_pid`, root) just before each
/// spawn; other processes of the machine may take the pid first, so it
/// retries (200 times, then panics). One test at a time moves
/// `ns_last_pid` (the machine-wide `ns-last-pid` lock).
pub fn spawn_with_pid(pid: i32, mut make: impl FnMut() -> Command) -> Child {
    let _lock = crate::FileLock::acquire("ns-last-pid");
    for _ in 0..200 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string())
            .expect("writing /proc/sys/kernel/ns_last_pid (root)");
        let mut child = make()
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run a process for pid {pid}: {e}"));
        if child.id() as i32 == pid {
            return child;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("could not start a process with pid {pid}");
}

/// The private memory process `pid` has resident (`Private_Clean` +
/// `Private_Dirty` of `/proc/PID/smaps_rollup`), in bytes: about what a
/// live core's pre-copy stages.
pub fn private_resident(pid: i32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let kib = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/smaps_rollup"))
    };
    (kib("Private_Clean:") + kib("Private_Dirty:")) * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_bounded_reads_more_than_a_pipe_holds_while_the_command_runs() {
        // 4 MiB on each stream: far more than a pipe's 64 KiB, so a runner
        // that read only after the exit would block the command until the
        // deadline and panic.
        let output = run_bounded(
            Command::new("sh").args([
                "-c",
                "head -c 4194304 /dev/zero; head -c 4194304 /dev/zero >&2",
            ]),
            Duration::from_secs(60),
        );
        assert!(output.status.success());
        assert_eq!(output.stdout.len(), 4 << 20);
        assert_eq!(output.stderr.len(), 4 << 20);
    }
}
