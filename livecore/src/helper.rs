//! The dumping child: every dump runs in a process forked for it, which is
//! the tracer, and sends its report back over a pipe.
//!
//! Why a child:
//! - **The target resumes whatever happens to the dumper**: the kernel
//!   detaches every tracee of a tracer that dies, and a tracer that exits
//!   detaches the threads it could not (one still in an uninterruptible
//!   sleep). The child dies with the thread that forked it
//!   (`PR_SET_PDEATHSIG`), and the caller kills it at the dump's deadline.
//! - **Nobody steals its tracees' stops**: a `waitpid(-1)` in any thread of
//!   a process also reaps the ptrace stops of tracees of its other threads;
//!   a caller that reaps every child in a SIGCHLD handler (daemons do) would
//!   take them. The child has no other thread.
//! - **The caller keeps nothing of it**: no tracee, no SIGCHLD mask, no
//!   descriptor of the target once the dump returns.
//!
//! The child keeps the core's descriptor, its result pipe, the target's
//! pidfd (`identity`), the caller's staging file (`Options::staging`) and
//! 0, 1, 2 (a stage hook may use them), and closes every other descriptor
//! it inherited, so that it holds none of the caller's sockets or pipes
//! open.
//!
//! The pipe carries framed messages (a tag, a length, the bytes): the
//! copy's pid as soon as the copy-on-write copy exists, then the result.
//! If the child dies after the first and before the second (killed), the
//! copy dies with it (it is made to), and the caller reaps it in the target
//! from a new child (`work::reap_orphaned_copy`): the target is left
//! without a zombie of ours unless the caller dies too.

use crate::report::{ErrorKind, LiveError, LiveReport, Result};
use crate::snapshot::Daemons;
use crate::sys::{self, Forked};
use crate::work::{self, Job};
use crate::identity::{self, Identity};
use crate::{access, Options, Output};
use std::fs::OpenOptions;
use std::io::ErrorKind as IoErrorKind;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The most a child's answer may be (a report is a few KiB).
const MAX_ANSWER: usize = 16 << 20;
/// Message tags on the pipe.
const TAG_COPY: u8 = 1;
const TAG_RESULT: u8 = 2;

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(tag);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Runs a dump of the process `pid` (or of the process of the thread
/// `pid`) in a forked child and returns its report; the process is held by
/// a pidfd opened first thing (`identity`).
pub fn dump(pid: i32, output: Output, options: &Options) -> Result<LiveReport> {
    // Which process (a thread's id names its process), then held: the
    // checks are made again through the pidfd.
    let first = access::check(pid)?;
    let identity = Identity::open(first.pid)?;
    checked_dump(identity, first.given_thread, output, options)
}

/// Runs a dump of the process of `pidfd` (whose pid is `pid`).
pub fn dump_pidfd(pidfd: OwnedFd, pid: i32, output: Output, options: &Options) -> Result<LiveReport> {
    checked_dump(Identity::of(pidfd, pid)?, None, output, options)
}

/// Checks who may dump the process `identity` holds, through its pid, and
/// that what was read was of it; then dumps it.
fn checked_dump(
    identity: Identity,
    given_thread: Option<i32>,
    output: Output,
    options: &Options,
) -> Result<LiveReport> {
    let mut target = access::check(identity.pid)?;
    // What the checks read of /proc/PID was of the pidfd's process.
    identity.alive()?;
    if target.pid != identity.pid || target.stat.start_time != identity.start_time {
        return Err(identity::gone(identity.pid));
    }
    target.given_thread = given_thread;
    run_dump(identity, target, output, options)
}

/// Runs a dump in a forked child and returns its report; the child checks
/// that `target` is still `identity`'s process once its threads are seized.
pub fn run_dump(
    identity: Identity,
    target: access::Target,
    output: Output,
    options: &Options,
) -> Result<LiveReport> {
    let started = Instant::now();
    if options.copy_buffer < 4096 {
        return Err(LiveError::new(
            ErrorKind::Invalid,
            "the copy buffer must be at least one page (4096 bytes)",
        ));
    }
    if let Some(level) = options.zstd_level {
        if !(1..=19).contains(&level) {
            return Err(LiveError::new(
                ErrorKind::Invalid,
                format!("zstd level {level} is not within 1..=19"),
            ));
        }
    }
    let (fd, created) = open_output(output)?;
    let daemons = options.snapshots.as_ref().map(|plan| {
        let (uids, _) = sys::credentials();
        Daemons::for_dump(uids[1], target.status.uids[0], plan)
    });
    let result = run_child(target, &identity, fd, options, daemons);
    let result = result.map(|mut report| {
        report.total_us = started.elapsed().as_micros() as u64;
        report
    });
    if result.is_err() {
        if let Some(path) = created {
            let _ = std::fs::remove_file(path);
        }
    }
    result
}

/// The descriptor to write to, and the path of a file created for it.
fn open_output(output: Output) -> Result<(OwnedFd, Option<PathBuf>)> {
    match output {
        Output::Fd(fd) => Ok((fd, None)),
        Output::Path(path) => {
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|e| {
                    let kind = if e.kind() == IoErrorKind::AlreadyExists {
                        ErrorKind::Invalid
                    } else {
                        ErrorKind::Output
                    };
                    LiveError::new(kind, format!("creating {}: {e}", path.display()))
                })?;
            Ok((OwnedFd::from(file), Some(path)))
        }
    }
}

fn run_child(
    target: access::Target,
    identity: &Identity,
    fd: OwnedFd,
    options: &Options,
    daemons: Option<Daemons>,
) -> Result<LiveReport> {
    let target_pid = target.pid;
    let internal =
        |what: &str, e: std::io::Error| LiveError::new(ErrorKind::Internal, format!("{what}: {e}"));
    let (read_end, write_end) = sys::pipe().map_err(|e| internal("creating the result pipe", e))?;
    let parent = sys::getpid();
    let child = match sys::fork().map_err(|e| internal("forking the dumping child", e))? {
        Forked::Child => {
            drop(read_end);
            child_main(parent, target, identity, fd, options, daemons, write_end)
        }
        Forked::Parent(child) => child,
    };
    drop(write_end);
    drop(fd);
    let (answer, copy) = collect(child, read_end, options.deadline);
    // Reaped here; a caller that reaps its children itself may have done so.
    let _ = sys::waitpid(child, 0);
    if let (Err(_), Some(copy)) = (&answer, copy) {
        reap_orphaned_copy(target_pid, copy);
    }
    answer
}

/// Reaps, from a new child, the copy a killed dumping child left (bounded:
/// it gives up after a few seconds, leaving a zombie at worst).
fn reap_orphaned_copy(pid: i32, copy: i32) {
    {
        let parent = sys::getpid();
        match sys::fork() {
            Ok(Forked::Child) => {
                if !sys::die_with_parent(parent) {
                    sys::exit_now(1);
                }
                sys::close_descriptors_except(3, &[]);
                let ok =
                    catch_unwind(|| work::reap_orphaned_copy(pid, copy).is_ok()).unwrap_or(false);
                sys::exit_now(i32::from(!ok));
            }
            Ok(Forked::Parent(child)) => {
                let deadline = Instant::now() + Duration::from_secs(15);
                while Instant::now() < deadline {
                    match sys::waitpid(child, libc::WNOHANG) {
                        Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                        _ => return,
                    }
                }
                let _ = sys::kill(child, libc::SIGKILL);
                let _ = sys::waitpid(child, 0);
            }
            Err(_) => {}
        }
    }
}

/// The child: keeps its descriptors, runs the dump, answers, exits.
fn child_main(
    parent: i32,
    target: access::Target,
    identity: &Identity,
    fd: OwnedFd,
    options: &Options,
    daemons: Option<Daemons>,
    answer: OwnedFd,
) -> ! {
    if !sys::die_with_parent(parent) {
        sys::exit_now(1);
    }
    let mut keep = vec![
        fd.as_raw_fd(),
        answer.as_raw_fd(),
        identity.pidfd.as_raw_fd(),
    ];
    if let Some(staging) = &options.staging {
        keep.push(staging.file.as_raw_fd());
    }
    sys::close_descriptors_except(3, &keep);
    let pipe = answer.as_raw_fd();
    let on_copy = |copy: i32| {
        let _ = sys::write_all_fd(pipe, &frame(TAG_COPY, &copy.to_le_bytes()));
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        work::run(Job {
            target,
            identity,
            options,
            daemons,
            output: fd,
            on_copy: &on_copy,
        })
    }));
    let result: Result<LiveReport> = outcome.unwrap_or_else(|panic| {
        let text = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(LiveError::new(
            ErrorKind::Internal,
            format!("the dumping child panicked: {text}"),
        ))
    });
    let bytes = frame(TAG_RESULT, &serde_json::to_vec(&result).unwrap_or_default());
    let status = i32::from(sys::write_all_fd(pipe, &bytes).is_err());
    sys::exit_now(status)
}

/// Reads the child's messages until it closes the pipe, or kills it at the
/// deadline (its tracees resume: the kernel detaches them). Returns the
/// result, and the copy's pid if one was made.
fn collect(
    child: i32,
    pipe: OwnedFd,
    deadline: Option<Duration>,
) -> (Result<LiveReport>, Option<i32>) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let internal = |message: String| LiveError::new(ErrorKind::Internal, message);
    let outcome: Result<()> = loop {
        let left = match deadline {
            Some(d) => match d.checked_sub(started.elapsed()) {
                Some(left) => Some(left),
                None => {
                    let _ = sys::kill(child, libc::SIGKILL);
                    break Err(LiveError::new(
                        ErrorKind::Timeout,
                        format!(
                            "the dump did not complete within {} s; it was stopped and the process let go",
                            d.as_secs_f64()
                        ),
                    ));
                }
            },
            None => None,
        };
        match sys::poll_readable(pipe.as_raw_fd(), left) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => break Err(internal(format!("waiting for the dumping child: {e}"))),
        }
        match sys::read_fd(pipe.as_raw_fd(), &mut chunk) {
            Ok(0) => break Ok(()),
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) => break Err(internal(format!("reading the dumping child's answer: {e}"))),
        }
        if received.len() > MAX_ANSWER {
            let _ = sys::kill(child, libc::SIGKILL);
            break Err(internal("the dumping child's answer is too long".into()));
        }
    };
    let mut copy = None;
    let mut result = None;
    let mut rest = received.as_slice();
    while rest.len() >= 5 {
        let len = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let Some(body) = rest.get(5..5 + len) else {
            break;
        };
        match rest[0] {
            TAG_COPY if len == 4 => {
                copy = Some(i32::from_le_bytes([body[0], body[1], body[2], body[3]]))
            }
            TAG_RESULT => result = Some(body.to_vec()),
            _ => {}
        }
        rest = &rest[5 + len..];
    }
    let answer = match (outcome, result) {
        (Err(e), _) => Err(e),
        (Ok(()), None) => Err(internal(
            "the dumping child died without an answer (killed?); the process was let go".into(),
        )),
        (Ok(()), Some(json)) => {
            serde_json::from_slice::<Result<LiveReport>>(&json).unwrap_or_else(|e| {
                Err(internal(format!(
                    "unreadable answer from the dumping child: {e}"
                )))
            })
        }
    };
    (answer, copy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs;
    use std::process::{Child, Command};
    use testsupport::process::spawn_with_pid;
    use testsupport::TempDir;

    fn sleeper() -> Command {
        let mut command = Command::new("sleep");
        command.arg("1000");
        command
    }

    /// Waits (bounded, widely) until `pid` is asleep in `sleep`'s wait.
    fn wait_asleep(pid: i32) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !procfs::status(pid).is_ok_and(|s| s.name == "sleep" && s.state == 'S') {
            assert!(Instant::now() < deadline, "{pid} never slept");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// `hold(pid)` of a sleeping process, which then exits and is reaped,
    /// its pid given to a new sleeping process on purpose (`ns_last_pid`):
    /// what `hold` returned, the pid, the new process.
    fn reused<T>(hold: impl FnOnce(i32) -> T) -> (T, i32, Child) {
        let mut first = sleeper().spawn().expect("running sleep");
        let pid = first.id() as i32;
        wait_asleep(pid);
        let held = hold(pid);
        first.kill().unwrap();
        first.wait().unwrap();
        let second = spawn_with_pid(pid, sleeper);
        wait_asleep(pid);
        (held, pid, second)
    }

    fn stop(mut child: Child) {
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The identity taken of a process that then exits and is reaped, its
    /// pid given to another process on purpose (`ns_last_pid`), is given
    /// to the dump past every check made before the fork (the new process
    /// is the caller's own and passes them): the dumping child seizes the
    /// new process's threads, sees the pidfd's process gone, and refuses;
    /// the new process was never stopped and is not traced, no core is
    /// left.
    #[test]
    fn a_pid_reused_after_the_checks_is_refused_once_seized_and_left_unharmed() {
        let dir = TempDir::new("livecore-identity");
        let (identity, pid, second) =
            reused(|pid| Identity::open(pid).expect("the pidfd of a live process"));
        // Its start time may well be the first's (clock ticks): the pidfd
        // tells them apart.
        let before = procfs::stat(pid).expect("the new process's stat");

        let target = access::check(pid).expect("the new process passes the checks");
        let core = dir.path().join("core");
        let options = Options {
            method: Some(crate::Method::StopAndCopy),
            ..Options::default()
        };
        let result = run_dump(identity, target, Output::Path(core.clone()), &options);
        let status = procfs::status(pid).expect("the new process lives on");
        let after = procfs::stat(pid).expect("the new process's stat");
        stop(second);
        match result {
            Ok(report) => panic!("the new process was dumped: {report:?}"),
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::Exited, "{e:?}");
                assert!(
                    e.message
                        .contains("the process exited; its pid now names another process"),
                    "{e:?}"
                );
            }
        }
        assert_eq!(status.tracer_pid, 0, "{status:?}");
        assert_eq!(status.state, 'S', "{status:?}");
        assert_eq!(after.start_time, before.start_time);
        assert!(!core.exists(), "a core was left");
    }

    /// Waits (bounded, widely) until `path` exists.
    fn wait_for(path: &std::path::Path) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !path.exists() {
            assert!(Instant::now() < deadline, "{} never came", path.display());
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// In the dumping child (the tracer), once part of the memory is
    /// copied: kills the process (SIGKILL ends its ptrace stop) and waits
    /// until it is a zombie, says `killed`; then, with `reap`, waits for it
    /// as its tracer (a tracer that waits during the copy: only then may
    /// its parent reap it) and says `reaped`; goes on at `go`.
    fn kill_during_copy(flags: &std::path::Path, pid: i32, reap: bool) {
        let _ = sys::kill(pid, libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !procfs::stat(pid).is_ok_and(|s| s.state == 'Z') {
            assert!(Instant::now() < deadline, "{pid} did not die");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::fs::write(flags.join("killed"), "").unwrap();
        if reap {
            wait_for(&flags.join("reap"));
            let _ = sys::waitpid(pid, libc::__WALL);
            std::fs::write(flags.join("reaped"), "").unwrap();
        }
        wait_for(&flags.join("go"));
    }

    /// A stop-and-copy dump of a sleeping process, killed (and, with
    /// `reuse`, reaped and its pid given to a new process) while the dump
    /// copies its memory: the dump's result, whether the parent could reap
    /// the process before the tracer waited for it, whether the core was
    /// left, and the new process (its status and stat before and after).
    #[allow(clippy::type_complexity)]
    fn killed_during_copy(
        reuse: bool,
    ) -> (
        Result<LiveReport>,
        bool,
        bool,
        Option<(procfs::Status, procfs::Stat, procfs::Stat)>,
    ) {
        let dir = TempDir::new("livecore-identity");
        let flags = dir.path().join("flags");
        std::fs::create_dir(&flags).unwrap();
        let mut first = sleeper().spawn().expect("running sleep");
        let pid = first.id() as i32;
        wait_asleep(pid);
        let identity = Identity::open(pid).expect("the pidfd of a live process");
        let target = access::check(pid).expect("a sleeping child passes the checks");
        let core = dir.path().join("core");
        let hook_flags = flags.clone();
        let options = Options {
            method: Some(crate::Method::StopAndCopy),
            stage_hook: Some(std::sync::Arc::new(move |stage| {
                if stage == crate::Stage::Copying {
                    kill_during_copy(&hook_flags, pid, reuse);
                }
            })),
            ..Options::default()
        };
        let output = Output::Path(core.clone());
        let dump = std::thread::spawn(move || run_dump(identity, target, output, &options));
        wait_for(&flags.join("killed"));
        // Traced, the dead process is its tracer's to see first.
        let reaped_early = first.try_wait().expect("waitpid").is_some();
        let mut second = None;
        if reuse {
            std::fs::write(flags.join("reap"), "").unwrap();
            wait_for(&flags.join("reaped"));
            first.wait().unwrap();
            let new = spawn_with_pid(pid, sleeper);
            wait_asleep(pid);
            let before = procfs::stat(pid).expect("the new process's stat");
            second = Some((new, before));
        }
        std::fs::write(flags.join("go"), "").unwrap();
        let result = dump.join().expect("the dump's thread");
        let new = second.map(|(new, before)| {
            let status = procfs::status(pid).expect("the new process lives on");
            let after = procfs::stat(pid).expect("the new process's stat");
            stop(new);
            (status, before, after)
        });
        if !reuse {
            first.wait().unwrap();
        }
        (result, reaped_early, core.exists(), new)
    }

    /// The process is killed while stop-and-copy reads its memory; its
    /// parent cannot reap it yet (the dumper traces it), but once the
    /// dumper's tracer has waited for it (as a tracer that waits during
    /// the copy would), the parent reaps it and its pid is given to a new
    /// process on purpose (`ns_last_pid`) before the copy goes on. The rest
    /// of the copy reads nothing of it (its address space is gone) and,
    /// by pid, could read the new process's: the pidfd checked after the
    /// last read says the process is gone, the dump is refused, the core
    /// removed, the new process never stopped or traced.
    #[test]
    fn a_pid_reused_during_the_copy_is_refused_and_the_core_discarded() {
        let (result, reaped_early, core_left, new) = killed_during_copy(true);
        let (status, before, after) = new.expect("the new process");
        let e = result.expect_err("a core was made of a process reaped during the copy");
        assert_eq!(e.kind, ErrorKind::Exited, "{e:?}");
        assert!(
            e.message.contains(
                "the process exited during the dump, while its memory was copied; its pid now names another process, which was left alone"
            ) && e.message.contains("the core was discarded"),
            "{e:?}"
        );
        assert!(!reaped_early, "the parent reaped a process the dumper traced");
        assert!(!core_left, "a core was left");
        assert_eq!(status.tracer_pid, 0, "{status:?}");
        assert_eq!(status.state, 'S', "{status:?}");
        assert_eq!(after.start_time, before.start_time);
    }

    /// The process is killed while stop-and-copy reads its memory (its pid
    /// not reused: the dumper traces it): what is left to read reads as
    /// nothing, not as holes: the dump is refused and the core removed.
    #[test]
    fn a_process_killed_during_the_copy_is_refused_and_the_core_discarded() {
        let (result, reaped_early, core_left, _) = killed_during_copy(false);
        let e = result.expect_err("a core was made of a process killed during the copy");
        assert_eq!(e.kind, ErrorKind::Exited, "{e:?}");
        assert!(e.message.contains("exited during the"), "{e:?}");
        assert!(!reaped_early, "the parent reaped a process the dumper traced");
        assert!(!core_left, "a core was left");
    }

    /// The same identity, through the public path: refused before anything
    /// is forked.
    #[test]
    fn a_pidfd_whose_process_exited_is_refused_before_the_dump() {
        let (pidfd, pid, second) =
            reused(|pid| sys::pidfd_open(pid).expect("the pidfd of a live process"));
        let dir = TempDir::new("livecore-identity");
        let core = dir.path().join("core");
        let result = dump_pidfd(pidfd, pid, Output::Path(core.clone()), &Options::default());
        let status = procfs::status(pid).expect("the new process lives on");
        stop(second);
        let e = result.expect_err("the new process was dumped");
        assert_eq!(e.kind, ErrorKind::Exited, "{e:?}");
        assert!(e.message.contains("the process exited"), "{e:?}");
        assert_eq!(status.tracer_pid, 0, "{status:?}");
        assert_eq!(status.state, 'S', "{status:?}");
        assert!(!core.exists(), "a core was left");
    }
}
