//! A child per call: runs one piece of work (after an optional set-up
//! step) in a forked child under a deadline, and returns the bytes it
//! produced. Every rule of the [`child`](super) module holds: the child
//! keeps only its channel, `/dev/null` and what [`Options::keep`] hands
//! over; the parent waits for nothing beyond the deadline, then kills the
//! child and reaps it within [`REAP_GRACE`] (or leaves it behind).

use super::{Child, ChildSide, Spawn};
use lttng_ctl::error::Result;
use std::os::fd::BorrowedFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

pub use super::{CHILD_KEPT_FDS, MAX_OUTPUT, REAP_GRACE};

/// What the errors call this kind of child.
const KIND: &str = "the isolated child";

/// Runs `work` in a forked child and returns the bytes it produced.
///
/// Errors: [`lttng_ctl::ErrorCode::Cancelled`] when the child has not finished within
/// `deadline` (it is then killed; this is what a hung session daemon looks
/// like); [`lttng_ctl::ErrorCode::Fatal`] when the child died without a result (the
/// context says how).
///
/// Must not be called with the liblttng-ctl lock held (it takes it).
pub fn run_isolated(deadline: Duration, work: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>> {
    run_isolated_after(deadline, "", || Ok(()), work)
}

/// Like [`run_isolated`], but the child first runs `setup` (to take another
/// identity, point liblttng-ctl at another daemon, ...); when `setup` fails,
/// `work` does not run and its error is returned as it was. `who` completes
/// the errors' context ("talking to the session daemon{who}"), for example
/// `" as user alice (uid 1000)"`.
///
/// `setup` and `work` run after `fork()` in a process that may have had
/// other threads: prepare what they need (allocations, user lookups) before
/// the call, and let them do only system calls and liblttng-ctl calls.
pub fn run_isolated_after(
    deadline: Duration,
    who: &str,
    setup: impl FnOnce() -> Result<()>,
    work: impl FnOnce() -> Vec<u8>,
) -> Result<Vec<u8>> {
    run_isolated_with(&Options::new(deadline), who, setup, |_| work())
}

/// How an isolated child runs besides its work: its deadline, how many
/// bytes it may send back, and which of the caller's descriptors it keeps.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// When the child is killed if it has not finished.
    pub deadline: Duration,
    /// The most the parent reads from the child (its result is refused
    /// beyond); at most [`MAX_OUTPUT`] by default.
    pub max_output: usize,
    /// Descriptors the child keeps, as 4, 5, ... in this order (0 to 2 are
    /// `/dev/null`, 3 its channel): a file the work reads that its new
    /// identity could not open, for example.
    pub keep: &'a [BorrowedFd<'a>],
}

impl Options<'_> {
    /// A deadline, the default bound on the result, no descriptor kept.
    pub fn new(deadline: Duration) -> Options<'static> {
        Options {
            deadline,
            max_output: MAX_OUTPUT,
            keep: &[],
        }
    }
}

/// [`run_isolated_after`] with all of [`Options`]; `work` gets the child's
/// copies of [`Options::keep`], in their order.
pub fn run_isolated_with(
    options: &Options<'_>,
    who: &str,
    setup: impl FnOnce() -> Result<()>,
    work: impl FnOnce(&[BorrowedFd<'_>]) -> Vec<u8>,
) -> Result<Vec<u8>> {
    spawn(options, who, setup, work)?.wait()
}

/// An isolated child forked by [`spawn`], whose result [`Isolated::wait`]
/// reads.
#[derive(Debug)]
pub struct Isolated {
    child: Child,
    started: Instant,
    deadline: Duration,
    max_output: usize,
}

/// Forks the child of [`run_isolated_with`] and returns at once: its
/// deadline runs from now, and [`Isolated::wait`] gives its result. Dropped
/// without waiting, the child is killed and reaped.
pub fn spawn(
    options: &Options<'_>,
    who: &str,
    setup: impl FnOnce() -> Result<()>,
    work: impl FnOnce(&[BorrowedFd<'_>]) -> Vec<u8>,
) -> Result<Isolated> {
    let started = Instant::now();
    let spawn = Spawn {
        name: None,
        keep: options.keep,
        kind: KIND,
        who,
    };
    let child = Child::spawn(&spawn, setup, |side: &mut ChildSide, kept| {
        side.reply(catch_unwind(AssertUnwindSafe(|| work(kept))));
    })?;
    Ok(Isolated {
        child,
        started,
        deadline: options.deadline,
        max_output: options.max_output,
    })
}

impl Isolated {
    /// The child's process id (it stays this child's until the child is
    /// reaped, by [`Isolated::wait`] or the drop).
    pub fn pid(&self) -> libc::pid_t {
        self.child.pid().as_raw_pid()
    }

    /// Waits for the set-up, then the work, until the deadline, and reaps
    /// the child; see [`run_isolated`] for the errors.
    pub fn wait(mut self) -> Result<Vec<u8>> {
        // The set-up's reply (empty), then the work's.
        self.child.receive(0, self.started, self.deadline)?;
        let result = self
            .child
            .receive(self.max_output, self.started, self.deadline)?;
        self.child.reap(self.started, self.deadline);
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::child;
    use lttng_ctl::error::{Error, ErrorCode};
    use std::os::fd::{AsFd, AsRawFd};

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_work_s_bytes_come_back() {
        let out = run_isolated(SECOND * 5, || b"hello".repeat(50_000)).unwrap();
        assert_eq!(out, b"hello".repeat(50_000));
    }

    #[test]
    fn work_runs_in_another_process() {
        let me = std::process::id();
        let out = run_isolated(SECOND * 5, || std::process::id().to_string().into_bytes()).unwrap();
        assert_ne!(String::from_utf8(out).unwrap(), me.to_string());
    }

    #[test]
    fn a_hung_child_is_cancelled_at_the_deadline_and_reaped() {
        // The work reads a pipe whose only writer is this test, which
        // writes nothing: it cannot finish, whatever the machine's load.
        let (read_end, write_end) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let keep = [read_end.as_fd()];
        let options = Options {
            keep: &keep,
            ..Options::new(Duration::from_millis(300))
        };
        let child = spawn(
            &options,
            "",
            || Ok(()),
            |kept| {
                let _ = rustix::io::read(kept[0], &mut [0u8; 1]);
                b"the pipe gave way".to_vec()
            },
        )
        .unwrap();
        // Not reaped before `wait`: the pid still names the child.
        let pidfd = child::tests::pidfd(child.child.pid());
        let err = child.wait().unwrap_err();
        assert_eq!(err.code(), ErrorCode::Cancelled, "{err}");
        assert!(err.message().contains("within 300 ms"), "{err}");
        child::tests::assert_reaped(&pidfd, &err);
        drop(write_end);
    }

    #[test]
    fn a_child_that_sends_more_than_the_bound_is_refused() {
        let err = run_isolated(SECOND * 30, || vec![b'x'; MAX_OUTPUT + 1]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Fatal);
        assert!(
            err.message()
                .contains(&format!("more than {MAX_OUTPUT} bytes")),
            "{err}"
        );
        // Exactly the bound is accepted.
        let out = run_isolated(SECOND * 30, || vec![b'x'; MAX_OUTPUT]).unwrap();
        assert_eq!(out.len(), MAX_OUTPUT);
    }

    #[test]
    fn the_child_keeps_only_its_channel_and_dev_null() {
        // A descriptor of the caller's that is not close-on-exec, on 0 and
        // elsewhere, as a core_pattern handler's core pipe would be.
        let file = std::fs::File::open("/proc/self/status").unwrap();
        // dup: not close-on-exec.
        let extra = rustix::io::dup(&file).unwrap();
        assert!(extra.as_raw_fd() > 2);
        let out = run_isolated(SECOND * 5, || {
            let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .flatten()
                .filter_map(|e| {
                    let target = std::fs::read_link(e.path()).ok()?;
                    Some(format!("{} {}", e.file_name().to_str()?, target.display()))
                })
                .collect();
            fds.sort();
            fds.join("\n").into_bytes()
        })
        .unwrap();
        drop(extra);
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        // read_dir's own descriptor is listed too (it is the child's own).
        assert!(lines.len() == 5, "{out}");
        for (i, line) in lines.iter().take(3).enumerate() {
            assert_eq!(*line, format!("{i} /dev/null"), "{out}");
        }
        assert!(lines[3].starts_with("3 socket:"), "{out}");
        assert!(lines[4].contains("/proc/"), "{out}");
    }

    #[test]
    fn kept_descriptors_follow_the_result_pipe_in_order_and_the_bound_is_the_callers() {
        use std::io::{Read, Seek, Write as _};
        let mut first = tempfile_with(b"first");
        let second = tempfile_with(b"second");
        first.rewind().unwrap();
        let keep = [first.as_fd(), second.as_fd()];
        let options = Options {
            keep: &keep,
            max_output: 64,
            ..Options::new(SECOND * 5)
        };
        let out = run_isolated_with(
            &options,
            "",
            || Ok(()),
            |kept| {
                // 0 to 3, the two kept, read_dir's own: nothing else.
                let open = std::fs::read_dir("/proc/self/fd").unwrap().count();
                let mut text = Vec::new();
                assert_eq!(kept.len(), 2);
                for (i, fd) in kept.iter().enumerate() {
                    assert_eq!(fd.as_raw_fd(), CHILD_KEPT_FDS + i as i32);
                    let mut file = std::fs::File::from(fd.try_clone_to_owned().unwrap());
                    let mut content = String::new();
                    file.rewind().unwrap();
                    file.read_to_string(&mut content).unwrap();
                    text.extend_from_slice(content.as_bytes());
                    text.push(b' ');
                }
                write!(text, "{open}").unwrap();
                text
            },
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "first second 7");
        let err = run_isolated_with(&options, "", || Ok(()), |_| vec![b'x'; 65]).unwrap_err();
        assert!(err.message().contains("more than 64 bytes"), "{err}");
    }

    fn tempfile_with(content: &[u8]) -> std::fs::File {
        use std::io::Write as _;
        let path = std::env::temp_dir().join(format!(
            "isolate-keep-{}-{}",
            std::process::id(),
            content.len()
        ));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file.write_all(content).unwrap();
        file
    }

    #[test]
    fn a_panic_in_the_child_is_an_error_not_a_crash() {
        let err = run_isolated(SECOND * 5, || panic!("boom")).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Fatal);
        assert!(err.message().contains("boom"), "{err}");
    }

    #[test]
    fn a_child_that_dies_is_an_error_with_context() {
        let err = run_isolated(SECOND * 5, || {
            // Ends the child only.
            let me = rustix::process::getpid();
            rustix::process::kill_process(me, rustix::process::Signal::KILL).unwrap();
            Vec::new()
        })
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Fatal);
        assert!(err.message().contains("signal 9"), "{err}");
    }

    #[test]
    fn a_failed_setup_is_returned_as_it_was_and_the_work_does_not_run() {
        let err = run_isolated_after(
            SECOND * 5,
            " as nobody in particular",
            || {
                Err(Error::with_message(
                    ErrorCode::PermissionDenied,
                    "setresuid: not allowed",
                    "acting as user x",
                ))
            },
            || panic!("the work ran after a failed set-up"),
        )
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
        assert_eq!(err.message(), "setresuid: not allowed");
        assert_eq!(err.context(), "acting as user x");
    }

    #[test]
    fn the_setup_runs_in_the_child_before_the_work() {
        use std::sync::atomic::{AtomicBool, Ordering};
        static SET_UP: AtomicBool = AtomicBool::new(false);
        let out = run_isolated_after(
            SECOND * 5,
            "",
            || {
                SET_UP.store(true, Ordering::SeqCst);
                Ok(())
            },
            || vec![u8::from(SET_UP.load(Ordering::SeqCst))],
        )
        .unwrap();
        assert_eq!(out, [1]);
        assert!(
            !SET_UP.load(Ordering::SeqCst),
            "the set-up ran in the caller"
        );
    }
}
