//! What a dump returns: the report a crash record of a live core is made of
//! (threads, sizes, the pause, the method, the snapshots), or the error
//! that ended it, with its kind (and the LTTng error code the C API returns
//! for it). Both cross from the dumping child to the caller as JSON.

use crate::Method;
use lttng_coredump_engine::FireReport;
use serde::{Deserialize, Serialize};

/// One thread as it was dumped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadReport {
    pub tid: i32,
    pub name: String,
    /// Its state letter before the stop (`/proc`: R, S, D, T...).
    pub state: char,
    /// Whether it stopped in time (a thread in an uninterruptible sleep may
    /// not: its registers are then zeroes in the core).
    pub stopped: bool,
    /// The signal it was about to take when it stopped (given back to it).
    pub signal: Option<i32>,
    /// `CLOCK_MONOTONIC` nanoseconds: it was stopped at least from the first
    /// to the second (0 when it did not stop), within the pause.
    pub stopped_from_ns: u64,
    pub stopped_to_ns: u64,
}

/// A region of memory the core does not hold faithfully.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionNote {
    pub start: u64,
    pub end: u64,
    pub path: String,
    pub why: String,
}

/// The snapshots of one session daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotFire {
    /// `root` or `user UID`.
    pub daemon: String,
    pub report: Option<FireReport>,
    /// Why there is no report.
    pub error: Option<String>,
}

/// What a live dump did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveReport {
    /// Always true: a live core, not a crash.
    pub live: bool,
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// The process name (`comm`), as the process set it.
    pub exec_name: String,
    /// The command line, NULs as spaces (at most 4 KiB).
    pub cmdline: String,
    pub hostname: String,
    /// When the threads were stopped, in seconds since the epoch.
    pub time: i64,
    pub method: Method,
    /// Why the default method (pre-copy, then copy-on-write) was not used,
    /// when no method was asked for explicitly.
    pub fallback: Option<String>,
    pub threads: Vec<ThreadReport>,
    /// How long the threads were stopped: from the first `PTRACE_INTERRUPT`
    /// to the last thread let go, in microseconds.
    pub pause_us: u64,
    /// The pause's bounds on `CLOCK_MONOTONIC`, in nanoseconds (to compare
    /// with the process's own clock readings).
    pub pause_begin_ns: u64,
    pub pause_end_ns: u64,
    /// Within the pause: stopping every thread, forking the copy
    /// (copy-on-write), the snapshots, copying memory (stop-and-copy).
    pub stop_us: u64,
    pub fork_us: u64,
    pub snapshot_us: u64,
    pub copy_us: u64,
    /// The pause stage by stage: each stage's name and when it ended, in
    /// microseconds from the first interrupt (`stop`: every thread stopped;
    /// `capture`: registers and `/proc` read; `snapshot`; `plan`: the
    /// mappings and notes, and `copy` (stop-and-copy); `clone`: the
    /// injected clone returned, `adopt`: the copy stopped and set up, and
    /// `fork`: what it lacks read (copy-on-write); `resume`: every thread
    /// let go).
    #[serde(default)]
    pub pause_stages: Vec<(String, u64)>,
    /// The nice value the dumper ran at while the threads were stopped,
    /// when it could raise its priority (`boost`); `None`: unchanged.
    #[serde(default)]
    pub stop_nice: Option<i32>,
    /// The second, one-thread stop that reaps the copy (copy-on-write).
    pub reap_pause_us: u64,
    /// Pre-copy: the first stop (every thread, to get the userfaultfd), in
    /// microseconds; `pause_us` is the final stop's.
    #[serde(default)]
    pub track_pause_us: u64,
    /// Pre-copy: the bytes of memory each pass copied while the process
    /// ran (the first pass: everything), then those the final stop copied
    /// (written since the last pass, and the regions copied whole then).
    #[serde(default)]
    pub precopy_passes: Vec<u64>,
    #[serde(default)]
    pub final_copy_bytes: u64,
    /// Copy-on-write: the memory the copy had to itself when the core was
    /// written, in bytes: the pages the process wrote meanwhile (each copied
    /// once by the kernel), what the method cost in memory.
    pub copy_private_bytes: u64,
    /// From the call to the core complete, in microseconds.
    pub total_us: u64,
    /// When the core's writing began and ended, on `CLOCK_MONOTONIC` in
    /// nanoseconds. Stop-and-copy with its buffer, and copy-on-write, begin
    /// after the pause's end (`pause_end_ns`): the file is written while
    /// the process runs.
    #[serde(default)]
    pub write_begin_ns: u64,
    #[serde(default)]
    pub write_end_ns: u64,
    /// Stop-and-copy: the memory the dumper held the copy in during the
    /// stop (its buffer's regions), in bytes; 0 when not buffered.
    #[serde(default)]
    pub buffer_bytes: u64,
    /// Stop-and-copy: why the core was written, in whole or in part, while
    /// the threads were stopped (no buffer, or a full one).
    #[serde(default)]
    pub buffer_note: Option<String>,
    /// The core's logical size.
    pub core_size: u64,
    /// What was written: bytes of data (holes excluded), compressed bytes
    /// with zstd.
    pub bytes_written: u64,
    pub compressed: bool,
    /// Memory segments in the core, and bytes of memory in them.
    pub segments: usize,
    pub memory_bytes: u64,
    pub unfaithful: Vec<RegionNote>,
    pub snapshots: Vec<SnapshotFire>,
    pub warnings: Vec<String>,
    /// The process exited after the copy was made (copy-on-write): the core
    /// is the process as it was at the stop.
    pub exited_during_dump: bool,
}

/// What kind of failure ended a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// No process has this pid.
    NoSuchProcess,
    /// The process is a zombie: it has exited, nothing is left to dump.
    Zombie,
    /// A kernel thread has no user memory.
    KernelThread,
    /// Another user's process, a set-id one, a non-dumpable one, one with
    /// capabilities the caller lacks, or the kernel refused to trace it.
    PermissionDenied,
    /// Not supported here (a 32-bit process, a copy-on-write dump that
    /// cannot be made safely).
    Unsupported,
    /// The process exited during the dump.
    Exited,
    /// Writing the core failed.
    Output,
    /// The dump's deadline passed.
    Timeout,
    /// Bad arguments.
    Invalid,
    /// Anything else (a bug, an unexpected kernel answer).
    Internal,
}

/// Why a dump failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveError {
    pub kind: ErrorKind,
    pub message: String,
}

impl LiveError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> LiveError {
        LiveError {
            kind,
            message: message.into(),
        }
    }

    /// The `LTTNG_ERR_*` code (positive) the C API returns, negated, for
    /// this error: `EPERM` for refusals, `INVALID` for a pid that names no
    /// process (or a zombie, a kernel thread) and bad arguments,
    /// `NOT_SUPPORTED`, `COMMAND_CANCELLED` for the deadline, `FATAL`
    /// otherwise.
    pub fn lttng_code(&self) -> u32 {
        const LTTNG_ERR_NOT_SUPPORTED: u32 = 15;
        const LTTNG_ERR_FATAL: u32 = 25;
        const LTTNG_ERR_EPERM: u32 = 32;
        const LTTNG_ERR_INVALID: u32 = 97;
        const LTTNG_ERR_COMMAND_CANCELLED: u32 = 128;
        match self.kind {
            ErrorKind::PermissionDenied => LTTNG_ERR_EPERM,
            ErrorKind::NoSuchProcess
            | ErrorKind::Zombie
            | ErrorKind::KernelThread
            | ErrorKind::Invalid => LTTNG_ERR_INVALID,
            ErrorKind::Unsupported => LTTNG_ERR_NOT_SUPPORTED,
            ErrorKind::Timeout => LTTNG_ERR_COMMAND_CANCELLED,
            ErrorKind::Exited | ErrorKind::Output | ErrorKind::Internal => LTTNG_ERR_FATAL,
        }
    }
}

impl std::fmt::Display for LiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LiveError {}

pub type Result<T> = std::result::Result<T, LiveError>;
