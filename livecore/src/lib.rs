//! The ELF core of a running process without stopping it for long, with
//! the LTTng snapshots taken while its threads are stopped, so that the
//! trace ends where the core begins (issue 22; the user-space successor of
//! the 2010 `/proc/PID/core` RFC, `shared/seeds/003`).
//!
//! One call, [`dump`], takes a pid, an output and [`Options`], and returns a
//! [`LiveReport`]: threads, sizes, the pause, the method, the snapshots.
//! The core is one gdb loads as it loads a kernel core: every thread's
//! `NT_PRSTATUS`, `NT_FPREGSET` and `NT_X86_XSTATE`, `NT_PRPSINFO`,
//! `NT_SIGINFO` when a thread was stopped about to take a signal,
//! `NT_AUXV`, `NT_FILE`, and the memory the kernel would dump
//! (`coredump_filter`, `MADV_DONTDUMP`, the first page of ELF file mappings
//! for their build-ids), written sparse, zstd optional.
//!
//! # How the process is stopped without noticing
//!
//! Every thread is `PTRACE_SEIZE`d and `PTRACE_INTERRUPT`ed: no signal is
//! sent, nothing enters the job-control state its parent's `waitpid`
//! reports, there is nothing for it to reap. `/proc/PID/task` is scanned
//! again until no thread is missing (threads created meanwhile by a thread
//! already seized are attached by the kernel, `PTRACE_O_TRACECLONE`).
//! A thread caught about to take a signal gets it back when it resumes; a
//! thread interrupted inside a system call restarts it as the kernel would
//! have; an endless wait that any ptrace interrupt makes fail with EINTR
//! (`epoll_wait`, `sigwaitinfo`, `semop`...: what gdb's attach does too) is
//! rewound to wait again (`restart`). Registers, signal mask, pending
//! signals and timers are not changed.
//!
//! All the tracing is done by a child process forked for the dump (see
//! `helper`): the kernel detaches every tracee of a tracer that dies, and a
//! seized, interrupted thread then simply goes on (it was not put in a
//! group stop). So killing the dumper at any moment resumes the target.
//! The copy-on-write method changes one thread's registers for a few
//! microseconds; that window is made safe too (`inject`): the thread is
//! given a stack frame that puts everything back by itself
//! (`rt_sigreturn`) should it run without us, and the copy a frame that
//! makes it exit.
//!
//! # The three ways of copying memory
//!
//! - [`Method::StopAndCopy`]: the memory is read in large pieces while
//!   every thread is stopped (`process_vm_readv`, or `/proc/PID/mem` for
//!   pages shared copy-on-write, which a pinning read would unshare: see
//!   `memory`) into a buffer of the dumper's own, allocated and faulted in
//!   before the stop (`stash`); the threads resume as soon as the last
//!   piece is copied, and only then is the core written from the buffer.
//!   The pause grows with the memory, at the speed of a memory-to-memory
//!   copy: the buffer is backed by huge pages asked for before it is
//!   faulted in, a large mapping is copied by several threads at once
//!   ([`Options::copy_threads`]), and the dumper runs at a raised priority
//!   for the stop alone where the caller may (`boost`): on a loaded
//!   machine, the copy otherwise waits for a CPU while the process waits
//!   for the copy. The buffer is bounded ([`Options::stop_copy_memory`]: by default
//!   three quarters of `MemAvailable`): a process larger than that has its
//!   core written while it is stopped, by a thread of its own, as the
//!   memory is read (the report says so, `buffer_note`).
//! - [`Method::CopyOnWrite`]: while the threads are stopped, one of them is
//!   made to call `clone()` (an injected system call): the copy shares every
//!   page copy-on-write, the original resumes at once, and the copy is
//!   dumped at leisure. The pause is the page-table copy of a `fork()`.
//!
//!   The copy is created with `CLONE_PTRACE` (the kernel attaches it to us
//!   before it can run a single instruction; it never runs user code),
//!   with an exit signal of 0 and without `CLONE_PARENT`: its parent is the
//!   target, which gets no SIGCHLD, and `waitpid(-1)` (without `__WALL` or
//!   `__WCLONE`) never reports such a child; the target's parent does not
//!   see it at all. When the dump is done the copy is killed and, since a
//!   dead child with exit signal 0 stays a zombie until its parent waits
//!   for it with `__WCLONE`, a `wait4(copy, __WALL)` is injected into one
//!   thread of the target (another stop of a few microseconds, of that
//!   thread only).
//!
//!   What a fork does not copy faithfully: `MADV_DONTFORK` mappings are
//!   absent from the copy, so those the core needs are read from the target
//!   during the stop (up to [`Options::max_stop_copy`] bytes; beyond that
//!   they are left out and the report says so); `MADV_WIPEONFORK` mappings
//!   read as zeroes in the copy: they are left out of the core and listed in
//!   the report (their owners asked for them not to survive a fork: keys,
//!   random-number state).
//!
//!   What else the copy shares with the target while it exists, and why it
//!   is harmless:
//!   - **File descriptors**: the copy starts with duplicates of the
//!     target's. It closes them all (an injected `close_range`) right after
//!     the target has resumed, so that it never keeps a socket or a pipe
//!     open behind the target's back (a peer waiting for EOF). Until then it
//!     holds references only: closing the copy's references never closes
//!     the target's. `flock` and OFD locks belong to the open file
//!     description, which the target keeps; POSIX record locks are not
//!     inherited by a fork, and a close in the copy does not drop the
//!     target's (they belong to the target's process).
//!   - **Memory locks and mutexes in memory**: the copy never runs, so it
//!     never takes or releases one; its robust-futex list and clear-tid
//!     address are not inherited, so its death touches no futex.
//!   - **Shared mappings** (`MAP_SHARED`, SysV shm): attached in the copy
//!     too (a SysV segment's `shm_nattch` is one higher during the dump),
//!     and their content in the core is what it is when the copy reads it,
//!     not at the stop: other processes (and the target) keep writing them.
//!   - **Memory accounting**: the copy's pages are read without being
//!     pinned (`/proc/PID/mem`), so reading the copy never copies a page;
//!     the report says what the copy had to itself at the end
//!     (`copy_private_bytes`). Private writable memory is charged again to
//!     the commit limit (`vm.overcommit_memory=2` may refuse the fork: the
//!     dump then falls back to stopping and copying); every page the target
//!     writes while the copy lives is copied once and charged to the
//!     target's memory cgroup, as after any fork (a 100 MiB/s writer costs
//!     up to 100 MiB per second of dump). The copy's `oom_score_adj` is set
//!     to 1000 so that the OOM killer picks it, not the target. The copy is
//!     written by threads at nice 19, so that the process, running again,
//!     comes first on a busy machine. Reaping the
//!     copy adds its CPU time (a few system calls) and its peak RSS to the
//!     target's `RUSAGE_CHILDREN`.
//!   - **Limits and identity**: the copy counts in the target's
//!     `RLIMIT_NPROC` and cgroup `pids.max` (a refused fork falls back to
//!     stopping and copying), shows in `ps` as a stopped child of the target
//!     with its name, and dies with the dump. Timers, pending signals and
//!     `PR_SET_PDEATHSIG` are not inherited by a fork.
//!
//!   The copy-on-write method is not used (the dump stops and copies, and
//!   says why) for a process under a seccomp filter (the injected `clone`
//!   could be what it kills for), with shadow stacks (its `rt_sigreturn`
//!   safety net needs a token), without the two instruction sequences the
//!   safety net needs in its code (`syscall; ret`, and `mov $15, %rax;
//!   syscall`, glibc's and musl's signal-return trampoline), or when no
//!   thread has room for the safety net on its stack.
//!
//! - [`Method::PreCopy`]: write-tracked pre-copy, as CRIU's pre-dump and
//!   QEMU's background snapshot do it. A first, brief stop makes one
//!   thread call `userfaultfd()` (an injected system call, as above, with
//!   the same safety net); the dumper takes the descriptor
//!   (`pidfd_getfd`), makes the thread close its own number, and lets go.
//!   Then, the process running, every private region the core will hold
//!   is registered for asynchronous write protection, protected and
//!   copied into a staging file; the pages written meanwhile (the kernel
//!   lists them and protects them again in one page-table walk,
//!   `PAGEMAP_SCAN`) are copied again, pass after pass, until few are. The
//!   final stop, where the snapshots are taken, copies only the pages
//!   written since the last pass, the shared mappings, and the regions
//!   made or changed since the registration; the threads are let go, the
//!   tracking ends (the process keeps no registered mapping, no
//!   descriptor), and the core is written from the staging file. The
//!   pause is the written set's copy, not the memory's, and nothing is
//!   forked: no second process, no memory charged twice. The cost is
//!   the process's: one minor fault on the first write to each page after
//!   each pass. See `precopy` for what can change behind the tracking and
//!   what is done about it. Not used (the dump falls back to
//!   copy-on-write, then to stopping and copying, and says why) where the
//!   injection cannot be (the same conditions as copy-on-write's) or where
//!   the kernel refuses the userfaultfd or its asynchronous write
//!   protection (before 6.7, or without `CONFIG_USERFAULTFD`), or where
//!   the staging file has a budget (`Options::staging`: the handler's crash
//!   store gives one its limits count) too small for the process's private
//!   memory (checked before any stop), or that a pass or the final stop
//!   would go beyond (checked before every write into it).
//!
//!   A dumper killed at any stage leaves nothing behind: the kernel lets
//!   the threads go and drops the userfaultfd with the dumper's last
//!   reference, which unregisters every region. One window is not covered:
//!   between the injected `userfaultfd()`'s return and the injected
//!   `close()` (a few microseconds of the first stop), a dumper killed
//!   leaves the process one idle userfaultfd descriptor (nothing
//!   registered: it changes nothing but the descriptor table).
//!
//! # Who may
//!
//! Root, or the owner of the process where the kernel lets them ptrace it:
//! the same real, effective and saved uids and gids (not a set-uid or
//! set-gid program), dumpable (`PR_SET_DUMPABLE`), and no capability the
//! caller lacks. The dump runs with the caller's rights; the core is
//! written by the caller and owned by them. Refused with a clear error: a
//! process of another user, a set-id one, a non-dumpable one (for a caller
//! who is not root), a kernel thread, a zombie; a process that exits during
//! the dump ends it with an error (with the copy-on-write method, once the
//! copy exists, the dump completes: it is the process as it was at the
//! stop).
//!
//! # The process, not its pid
//!
//! The process is held by a pidfd from the start: [`dump`] opens one
//! first thing, [`dump_pidfd`] takes the caller's (one it checked the
//! process through). Once its threads are seized, and before any is
//! stopped, the dump checks that the pidfd's process still exists and that
//! the pid's start time is the one read when the pidfd was taken: a
//! process that exited and whose pid was reused meanwhile is refused
//! ([`ErrorKind::Exited`], "the process exited; its pid now names
//! another"), the process now under that pid let go without ever being
//! stopped (`identity`). Stop-and-copy checks again after its last read,
//! before letting go: the pidfd's process still exists with the same start
//! time, so what was read by pid was its, and its address space is still
//! there; otherwise the core is discarded ("the process exited during the
//! copy").
//!
//! # Snapshots while stopped
//!
//! With [`Options::snapshots`], the OnAnyCoreDump triggers (and the
//! configured sessions) are fired while every thread is stopped, in the
//! root session daemon and in the process owner's own daemon, exactly as
//! the core_pattern handler does for a crash (`lttng_coredump_engine`'s
//! fire): the snapshot holds the last event before the stop and none after.

#![deny(clippy::undocumented_unsafe_blocks)]

// The dump itself is x86_64's (its notes, its registers, its injection);
// elsewhere `dump` says it is not supported.
macro_rules! x86_64_modules {
    ($($module:ident),* $(,)?) => {
        $(
            #[cfg(target_arch = "x86_64")]
            mod $module;
        )*
    };
}
x86_64_modules!(
    access, boost, elf, freeze, helper, identity, inject, memory, notes, pipeline, precopy, procfs,
    regions, restart, sink, snapshot, stash, sys, work,
);
mod report;
mod stage;

pub use report::{ErrorKind, LiveError, LiveReport, RegionNote, SnapshotFire, ThreadReport};
pub use stage::{Stage, StageHook};

use serde::{Deserialize, Serialize};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How the memory is copied (see the crate documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Read while every thread is stopped (`process_vm_readv`).
    StopAndCopy,
    /// A copy-on-write copy made by an injected `clone()`, dumped after the
    /// target has resumed.
    CopyOnWrite,
    /// Write-tracked pre-copy: copied while the process runs, the pages it
    /// writes meanwhile tracked (userfaultfd asynchronous write
    /// protection) and copied again, the last ones during a final stop.
    PreCopy,
}

impl Method {
    /// The method [`dump`] uses when none is asked for, chosen from the
    /// benchmark's figures (BENCHMARKS.md, "Live cores"): pre-copy's
    /// pauses are the copy of what the process wrote since the last pass
    /// (a few milliseconds, whatever the size), where copy-on-write's is
    /// the page-table copy of a fork (about 20-30 ms per GiB of 4 KiB
    /// pages) and stopping and copying takes a fraction of a second per
    /// GiB. So pre-copy is the default wherever it can be used; the dump
    /// falls back to copy-on-write, and says why, where the kernel refuses
    /// the userfaultfd, where the staging file cannot be written or its
    /// budget ([`Options::staging`]) cannot hold the memory, or where the
    /// passes do not keep up with the process's writes (the final stop
    /// would copy more than a fork takes), and to stopping and copying
    /// where no system call can be injected.
    pub const DEFAULT: Method = Method::PreCopy;

    pub fn name(self) -> &'static str {
        match self {
            Method::StopAndCopy => "stop-and-copy",
            Method::CopyOnWrite => "copy-on-write",
            Method::PreCopy => "pre-copy",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Method, String> {
        match s {
            "stop-and-copy" | "stop" => Ok(Method::StopAndCopy),
            "copy-on-write" | "cow" => Ok(Method::CopyOnWrite),
            "pre-copy" | "precopy" => Ok(Method::PreCopy),
            _ => Err(format!(
                "unknown method {s:?} (stop-and-copy, copy-on-write or pre-copy)"
            )),
        }
    }
}

/// Where the core goes.
#[derive(Debug)]
pub enum Output {
    /// A new file, created by the caller (mode 0600, refused if it exists)
    /// and removed if the dump fails.
    Path(PathBuf),
    /// An open descriptor: a regular file (written from its current
    /// position, cut there first, with holes for zero pages) or a pipe or
    /// socket (written as a stream).
    Fd(OwnedFd),
}

/// What to snapshot while the threads are stopped (as the handler's
/// configuration says for a crash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotPlan {
    /// The time all the daemons together may take (the threads stay
    /// stopped meanwhile).
    pub deadline: Duration,
    /// Sessions to snapshot in addition to those of the triggers.
    pub extra_sessions: Vec<String>,
    /// With neither triggers nor extra sessions: every active
    /// snapshot-mode session.
    pub fallback_to_active_snapshot_sessions: bool,
    /// Also fire in the process owner's own session daemon.
    pub user_daemon: bool,
}

impl Default for SnapshotPlan {
    fn default() -> SnapshotPlan {
        SnapshotPlan {
            deadline: Duration::from_secs(5),
            extra_sessions: Vec::new(),
            fallback_to_active_snapshot_sessions: false,
            user_daemon: true,
        }
    }
}

/// Where pre-copy stages the memory and how much room it has there, given
/// by a caller that counts the space (the handler's crash store), instead
/// of a file beside the output, in `$TMPDIR` or `/var/tmp`.
#[derive(Debug, Clone)]
pub struct StagingSpace {
    /// An open, read-write, unnamed regular file (`O_TMPFILE` in the
    /// caller's directory, on its file system): the dump empties it and
    /// stages the memory in it. The caller keeps its own descriptor (it
    /// sees what the file takes while the dump runs), and the file goes
    /// with the last descriptor, whatever happens.
    pub file: Arc<OwnedFd>,
    /// The most bytes the file may take on disk (its allocated blocks),
    /// checked before every write into it: when the process's private
    /// resident memory is already more, pre-copy is not started (no first
    /// stop); when a pass would go beyond, pre-copy gives up and the final
    /// stop makes a copy-on-write copy instead (a default dump; an explicit
    /// pre-copy fails), the reason saying so.
    pub budget: u64,
    /// What sets the budget, for those reasons (e.g. "the crash store's
    /// room (max_dir_size, min_free), the core's share kept").
    pub limit: String,
}

/// How a dump is made.
#[derive(Clone)]
pub struct Options {
    /// `None`: [`Method::DEFAULT`], falling back to copy-on-write, then to
    /// stopping and copying, where it cannot be used. An explicit
    /// [`Method::PreCopy`] or [`Method::CopyOnWrite`] fails instead of
    /// falling back (an explicit pre-copy also copies in its final stop
    /// whatever its passes did not keep up with).
    pub method: Option<Method>,
    /// zstd level (1..=19) to compress the core with; `None`: not
    /// compressed.
    pub zstd_level: Option<i32>,
    /// Bytes read from the process per system call. Two buffers of this
    /// size are used, one read into while the other is written (the
    /// dumper's memory is about twice this plus a few MiB). The default,
    /// 256 KiB, is what bench/live found fastest: small enough for both
    /// copies of a piece (out of the process, into the page cache) to stay
    /// in the CPU's cache, large enough for the system calls not to count;
    /// 8 MiB pieces were a third slower.
    pub copy_buffer: usize,
    /// How long the threads get to stop (one in an uninterruptible sleep
    /// may not); those that have not are dumped without registers, and stop
    /// as soon as they leave the kernel.
    pub stop_timeout: Duration,
    /// The whole dump may take this long; then the dumping child is killed
    /// (the target resumes) and the dump fails. Default 15 minutes: a
    /// mapping whose pages come from a file system that never answers (a
    /// user's FUSE mount) would otherwise hold the dump, and with
    /// stop-and-copy the process, for ever.
    pub deadline: Option<Duration>,
    /// With copy-on-write, how many bytes of `MADV_DONTFORK` memory may be
    /// read while the threads are stopped (beyond: left out and reported).
    pub max_stop_copy: u64,
    /// Stop-and-copy: the most bytes of memory the copy may be held in
    /// during the stop before the core is written (`stash`). `None`: three
    /// quarters of the memory available (`MemAvailable`) when the dump
    /// starts; `Some(0)`: no buffer, the core is written during the stop.
    pub stop_copy_memory: Option<u64>,
    /// Stop-and-copy: how many threads copy a large mapping into the buffer
    /// at once during the stop. Default: the CPUs this process may run on
    /// (at most 4): the copy is the CPU's own work (the kernel copying
    /// page by page), so two CPUs copy a mapping in about half the time.
    /// 1: one thread, as before.
    pub copy_threads: usize,
    /// Raise the dumper's scheduling priority while the threads are
    /// stopped, where the caller may (`boost`: root or `CAP_SYS_NICE`).
    pub raise_priority: bool,
    /// Pre-copy, when no method was asked for: once the last pass has
    /// copied this many bytes or more (the process writes faster than the
    /// passes copy), the final stop makes a copy-on-write copy instead of
    /// copying that much while stopped. Default 32 MiB: about 15 ms of
    /// copying here, where the fork of a GiB of 4 KiB pages takes 20-30 ms
    /// (BENCHMARKS.md, "Live cores").
    pub precopy_give_up: u64,
    /// When no method is asked for, whether pre-copy may be chosen: it
    /// stages the whole memory in a temporary file (beside a file output,
    /// in `$TMPDIR`, `/var/tmp`, or where [`Options::staging`] says, within
    /// its budget). Without it the default is copy-on-write (then
    /// stop-and-copy), as before pre-copy. The handler's crash store no
    /// longer clears it: it gives a [`StagingSpace`] its limits count.
    pub precopy_by_default: bool,
    /// Where pre-copy stages the memory, within a budget (see
    /// [`StagingSpace`]); `None`: an unnamed file beside a file output, or
    /// in `$TMPDIR` (`/var/tmp`), limited only by the file system.
    pub staging: Option<StagingSpace>,
    /// LTTng snapshots to take while the threads are stopped.
    pub snapshots: Option<SnapshotPlan>,
    /// Called in the dumping child at each stage (tests and benchmarks).
    pub stage_hook: Option<StageHook>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            method: None,
            zstd_level: None,
            copy_buffer: 256 << 10,
            stop_timeout: Duration::from_secs(2),
            deadline: Some(Duration::from_secs(15 * 60)),
            max_stop_copy: 64 << 20,
            stop_copy_memory: None,
            copy_threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            raise_priority: true,
            precopy_give_up: 32 << 20,
            precopy_by_default: true,
            staging: None,
            snapshots: None,
            stage_hook: None,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("method", &self.method)
            .field("zstd_level", &self.zstd_level)
            .field("copy_buffer", &self.copy_buffer)
            .field("stop_timeout", &self.stop_timeout)
            .field("deadline", &self.deadline)
            .field("max_stop_copy", &self.max_stop_copy)
            .field("stop_copy_memory", &self.stop_copy_memory)
            .field("copy_threads", &self.copy_threads)
            .field("raise_priority", &self.raise_priority)
            .field("precopy_give_up", &self.precopy_give_up)
            .field("precopy_by_default", &self.precopy_by_default)
            .field("staging", &self.staging)
            .field("snapshots", &self.snapshots)
            .field("stage_hook", &self.stage_hook.is_some())
            .finish()
    }
}

/// Dumps the core of the running process `pid` to `output` (see the crate
/// documentation), from a child process forked for the dump; returns what
/// the crash record of a live core needs. The process is held by a pidfd
/// opened first thing (a thread's id names its process): if it exits and
/// its pid names another process before its threads are seized, the dump
/// is refused and that process left alone.
pub fn dump(pid: i32, output: Output, options: &Options) -> Result<LiveReport, LiveError> {
    #[cfg(target_arch = "x86_64")]
    return helper::dump(pid, output, options);
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (pid, output, options);
        Err(LiveError::new(
            ErrorKind::Unsupported,
            "live cores are implemented for x86_64 only",
        ))
    }
}

/// Dumps the core of the running process `pidfd` names (a pidfd, from
/// `pidfd_open` or `SO_PEERPIDFD`), whose pid is `pid`, as [`dump`] does;
/// refused if the pidfd is of another pid, or if its process has exited
/// (even if its pid names another process now, which is left alone).
pub fn dump_pidfd(
    pidfd: OwnedFd,
    pid: i32,
    output: Output,
    options: &Options,
) -> Result<LiveReport, LiveError> {
    #[cfg(target_arch = "x86_64")]
    return helper::dump_pidfd(pidfd, pid, output, options);
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (pidfd, pid, output, options);
        Err(LiveError::new(
            ErrorKind::Unsupported,
            "live cores are implemented for x86_64 only",
        ))
    }
}
