//! Reading the core without waiting for good: the kernel's dump of a
//! process can stall for ever (a page of a file it maps is on a FUSE file
//! system that never answers: the dumping task waits in that page fault,
//! and no byte comes). A read that makes no progress for the stall bound
//! calls the caller's remedy (aborting the FUSE connections the process
//! maps, `fuse_abort`), and goes on only when the remedy did something;
//! otherwise, or after [`MAX_STALLS`] stalls, it ends with an error that
//! says so, and the handler keeps what it has: the core cut and marked.
//!
//! What frees the kernel's `core_pipe_limit` slot is the end of the dump,
//! not the end of our read: the dumping task is blocked in the fault, not
//! in its write to the pipe, so only the fault's end (the file system
//! answers, its connection is aborted, or the kernel's own FUSE request
//! timeout fires) lets it go on, fail to write and finish.

use crate::store::record::{Remedy, Stall, StallSection};
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

/// Stalls a read may meet, each followed by a remedy that did something,
/// before it ends anyway.
pub const MAX_STALLS: usize = 4;

/// A core stream the handler can wait on with a bound.
pub trait CoreSource: Read {
    /// Waits until a read would not block (data, the end of the stream or
    /// an error), at most `timeout`; `Ok(false)` when nothing came.
    fn wait_readable(&mut self, timeout: Duration) -> io::Result<bool>;
}

/// Bytes in memory (the handler's unit tests): always ready.
impl CoreSource for &[u8] {
    fn wait_readable(&mut self, _timeout: Duration) -> io::Result<bool> {
        Ok(true)
    }
}

/// The kernel's pipe on the handler's standard input.
impl CoreSource for io::StdinLock<'_> {
    fn wait_readable(&mut self, timeout: Duration) -> io::Result<bool> {
        wait_fd(io::stdin().as_fd(), timeout)
    }
}

/// Waits until `fd` is readable (or hung up, or in error), at most
/// `timeout`.
pub fn wait_fd(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let until = Instant::now() + timeout;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let left = Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&left)) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(rustix::io::Errno::INTR) if Instant::now() < until => continue,
            Err(rustix::io::Errno::INTR) => return Ok(false),
            Err(err) => return Err(err.into()),
        }
    }
}

/// `source` read with a stall bound: see the module documentation.
pub struct Bounded<'a, S, F> {
    source: &'a mut S,
    /// No byte for this long ends the read (unless the remedy acted).
    bound: Duration,
    /// The remedy is first tried after this long without a byte (at most
    /// `bound`), and again at `bound`.
    first_remedy: Duration,
    remedy: F,
    bytes: u64,
    stalls: Vec<Stall>,
    ended: bool,
}

impl<'a, S: CoreSource, F: FnMut(u64) -> Remedy> Bounded<'a, S, F> {
    /// `remedy` is called with the bytes read so far when the stream has
    /// sent nothing for `first_remedy`, and again at `bound`.
    pub fn new(source: &'a mut S, bound: Duration, first_remedy: Duration, remedy: F) -> Self {
        Bounded {
            source,
            bound,
            first_remedy: first_remedy.min(bound),
            remedy,
            bytes: 0,
            stalls: Vec::new(),
            ended: false,
        }
    }

    /// The record's section, when the stream stalled at all.
    pub fn section(&self) -> Option<StallSection> {
        (!self.stalls.is_empty()).then(|| StallSection {
            stall_timeout_ms: self.bound.as_millis() as u64,
            first_remedy_ms: self.first_remedy.as_millis() as u64,
            stalls: self.stalls.clone(),
            ended_the_read: self.ended,
        })
    }
}

impl<S: CoreSource, F: FnMut(u64) -> Remedy> Read for Bounded<'_, S, F> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let mut since = Instant::now();
        // Whether the remedy was tried in this stall already (at
        // `first_remedy`): the next try is at `bound`.
        let mut tried = false;
        loop {
            let check_at = if tried { self.bound } else { self.first_remedy };
            let timeout = check_at.saturating_sub(since.elapsed());
            if self.source.wait_readable(timeout)? {
                let read = self.source.read(buffer)?;
                self.bytes += read as u64;
                return Ok(read);
            }
            if since.elapsed() < check_at {
                continue;
            }
            let remedy = (self.remedy)(self.bytes);
            let acted = remedy.acted;
            let said = remedy.said.join("; ");
            self.stalls.push(Stall {
                after_bytes: self.bytes,
                remedy,
            });
            if acted && self.stalls.len() < MAX_STALLS {
                // The dump may go on: a fresh wait.
                since = Instant::now();
                tried = false;
                continue;
            }
            if !tried && self.first_remedy < self.bound && self.stalls.len() < MAX_STALLS {
                tried = true;
                continue;
            }
            self.ended = true;
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the dump stalled: no data from the kernel for {} (core_stall_timeout){}{}",
                    crate::base::human::duration(since.elapsed().min(self.bound)),
                    if said.is_empty() { "" } else { ": " },
                    said
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::OwnedFd;

    /// A pipe's read end, as the kernel's pipe is.
    struct PipeSource(std::fs::File);

    impl Read for PipeSource {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            self.0.read(buffer)
        }
    }

    impl CoreSource for PipeSource {
        fn wait_readable(&mut self, timeout: Duration) -> io::Result<bool> {
            wait_fd(self.0.as_fd(), timeout)
        }
    }

    fn pipe() -> (PipeSource, std::fs::File) {
        let (read, write): (OwnedFd, OwnedFd) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        (
            PipeSource(std::fs::File::from(read)),
            std::fs::File::from(write),
        )
    }

    #[test]
    fn a_stream_that_never_sends_ends_once_the_remedy_does_nothing() {
        // The writer is kept open and never writes: the stall is certain.
        let (mut source, mut writer) = pipe();
        writer.write_all(b"abc").unwrap();
        let mut calls = Vec::new();
        let bound = Duration::from_millis(20);
        let mut bounded = Bounded::new(&mut source, bound, bound, |bytes| {
            calls.push(bytes);
            Remedy {
                acted: false,
                said: vec!["nothing to abort".into()],
                fuse: vec![],
            }
        });
        let mut buffer = [0u8; 16];
        assert_eq!(bounded.read(&mut buffer).unwrap(), 3);
        let err = bounded.read(&mut buffer).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("nothing to abort"), "{err}");
        let section = bounded.section().unwrap();
        assert!(section.ended_the_read);
        assert_eq!(section.stalls.len(), 1);
        assert_eq!(section.stalls[0].after_bytes, 3);
        drop(bounded);
        assert_eq!(calls, [3]);
        drop(writer);
    }

    #[test]
    fn a_remedy_that_acts_lets_the_read_go_on_a_bounded_number_of_times() {
        let (mut source, writer) = pipe();
        let bound = Duration::from_millis(10);
        let mut bounded = Bounded::new(&mut source, bound, bound, |_| Remedy {
            acted: true,
            said: vec!["aborted".into()],
            fuse: vec![],
        });
        let err = bounded.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(bounded.section().unwrap().stalls.len(), MAX_STALLS);
        drop(writer);
    }

    #[test]
    fn an_early_remedy_that_does_nothing_waits_on_to_the_bound_and_tries_again() {
        let (mut source, writer) = pipe();
        let mut tries = 0;
        let mut bounded = Bounded::new(
            &mut source,
            Duration::from_millis(60),
            Duration::from_millis(10),
            |_| {
                tries += 1;
                Remedy::default()
            },
        );
        let started = Instant::now();
        assert!(bounded.read(&mut [0u8; 4]).is_err());
        // Never before the bound: the early try alone does not end it.
        assert!(started.elapsed() >= Duration::from_millis(60));
        let section = bounded.section().unwrap();
        assert_eq!(section.stalls.len(), 2);
        drop(bounded);
        assert_eq!(tries, 2);
        drop(writer);
    }

    #[test]
    fn data_and_the_end_of_the_stream_are_never_a_stall() {
        let (mut source, mut writer) = pipe();
        writer.write_all(b"core").unwrap();
        drop(writer);
        let bound = Duration::from_secs(3600);
        let mut bounded = Bounded::new(&mut source, bound, bound, |_| panic!("no stall"));
        let mut all = Vec::new();
        bounded.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"core");
        assert!(bounded.section().is_none());
    }
}
