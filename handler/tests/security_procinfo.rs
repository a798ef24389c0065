//! The handler's `/proc` reader against a PID that is reused, and against
//! a process whose `/proc` entries vanish while they are read: with the
//! pidfd (`%F`) the record describes the crashed process or says it could
//! not tell, never another process.
//!
//! Through the kernel the case cannot arise (the kernel holds the crashing
//! process while `core_pipe_limit` is non-zero, so its PID stays taken), so
//! these tests drive `procinfo::gather` with real processes: one that exits
//! and a second one given the same PID on purpose (`ns_last_pid`).

use lttng_coredump_handler::crash::procinfo::{gather, ProcessInfo};
use lttng_coredump_handler::store::record::Identity;
use std::fs;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testsupport::unique_name;

/// A pidfd of `pid`, as the kernel gives the handler one.
fn pidfd_of(pid: i32) -> OwnedFd {
    let process = rustix::process::Pid::from_raw(pid).expect("a PID");
    rustix::process::pidfd_open(process, rustix::process::PidfdFlags::empty())
        .unwrap_or_else(|err| panic!("pidfd_open({pid}): {err}"))
}

fn raw(fd: &OwnedFd) -> i32 {
    std::os::fd::AsRawFd::as_raw_fd(fd)
}

/// A shell waiting on its (never written) stdin, with `marker` as its `$0`:
/// the marker in its command line says which process `/proc` described.
fn marked(marker: &str) -> Command {
    let mut command = Command::new("/bin/sh");
    command
        .args(["-c", "read line", marker])
        .stdin(Stdio::piped());
    command
}

fn spawn_marked(marker: &str) -> Child {
    marked(marker).spawn().expect("running /bin/sh")
}

/// Waits until the process's command line is its own (spawn may return
/// before exec has put the new arguments in place).
fn wait_for_cmdline(pid: i32, marker: &str) {
    // Wide: an exec on a loaded machine; nothing here measures its speed.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            return;
        }
        assert!(Instant::now() < deadline, "{pid} never ran {marker}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Starts a marked process under exactly `pid` (`ns_last_pid`).
fn spawn_with_pid(pid: i32, marker: &str) -> Child {
    testsupport::process::spawn_with_pid(pid, || marked(marker))
}

fn describes(info: &ProcessInfo, marker: &str) -> bool {
    info.cmdline
        .iter()
        .flatten()
        .any(|arg| arg.as_slice() == marker.as_bytes())
}

#[test]
fn a_reused_pid_is_never_described_as_the_crashed_process() {
    let original = unique_name("lcdsec-original");
    let impostor = unique_name("lcdsec-impostor");
    let mut first = spawn_marked(&original);
    let pid = first.id() as i32;
    wait_for_cmdline(pid, &original);
    let pidfd = pidfd_of(pid);

    // While the process lives, its pidfd vouches for what /proc says.
    let gathered = gather(Path::new("/proc"), pid, Some(raw(&pidfd)));
    assert_eq!(gathered.identity, Identity::VerifiedByPidfd);
    assert!(describes(&gathered.info, &original), "{gathered:?}");

    // It dies and is reaped; another process gets its PID.
    first.kill().unwrap();
    first.wait().unwrap();
    let mut second = spawn_with_pid(pid, &impostor);
    wait_for_cmdline(pid, &impostor);

    let gathered = gather(Path::new("/proc"), pid, Some(raw(&pidfd)));
    second.kill().unwrap();
    second.wait().unwrap();
    match &gathered.identity {
        Identity::CouldNotTell(reason) => assert!(
            reason.contains(&format!("process {pid} had exited")),
            "{reason}"
        ),
        other => panic!("the impostor was not detected: {other:?} {gathered:?}"),
    }
    assert_eq!(gathered.info, ProcessInfo::default(), "{gathered:?}");
}

#[test]
fn proc_entries_vanishing_or_reused_while_read_never_describe_another_process() {
    // Each round: a process, its pidfd, and a thread that kills it, reaps it
    // and tries to start an impostor under its PID at a moment that moves
    // from round to round, while /proc is read.
    let rounds = 60;
    let (mut verified, mut could_not_tell) = (0, 0);
    for round in 0..rounds {
        let original = unique_name("lcdsec-race-original");
        let impostor = unique_name("lcdsec-race-impostor");
        let mut child = spawn_marked(&original);
        let pid = child.id() as i32;
        wait_for_cmdline(pid, &original);
        let pidfd = pidfd_of(pid);
        let delay = Duration::from_micros((round as u64 * 37) % 400);
        let killer = {
            let impostor = impostor.clone();
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                child.kill().unwrap();
                child.wait().unwrap();
                spawn_with_pid(pid, &impostor)
            })
        };
        let mut seen = Vec::new();
        let started = Instant::now();
        while !killer.is_finished() || seen.is_empty() {
            seen.push(gather(Path::new("/proc"), pid, Some(raw(&pidfd))));
            // A bound against a hang, not a measurement: wide.
            assert!(started.elapsed() < Duration::from_secs(120));
        }
        let mut second = killer.join().unwrap();
        wait_for_cmdline(pid, &impostor);
        seen.push(gather(Path::new("/proc"), pid, Some(raw(&pidfd))));
        second.kill().unwrap();
        second.wait().unwrap();
        for gathered in &seen {
            assert!(
                !describes(&gathered.info, &impostor),
                "round {round}: another process described: {gathered:?}"
            );
            match &gathered.identity {
                Identity::VerifiedByPidfd => {
                    verified += 1;
                    // Ours, or part of ours: a dying process's command line
                    // can read short or empty.
                    let read = gathered.info.cmdline.clone().unwrap_or_default().join(&0);
                    let whole = ["/bin/sh", "-c", "read line", &original].join("\0");
                    assert!(
                        whole.as_bytes().starts_with(&read),
                        "round {round}: {gathered:?}"
                    );
                }
                Identity::CouldNotTell(_) => {
                    could_not_tell += 1;
                    assert_eq!(gathered.info, ProcessInfo::default(), "{gathered:?}");
                }
                Identity::Unverified(_) => panic!("a pidfd was given: {gathered:?}"),
            }
        }
        // The last reading, with the impostor in place, is always refused.
        assert!(matches!(
            seen.last().unwrap().identity,
            Identity::CouldNotTell(_)
        ));
    }
    assert!(
        verified > 0 && could_not_tell >= rounds,
        "{verified} {could_not_tell}"
    );
}
