//! What crashed, and have we seen it before: the report of one crash, read
//! from its core, and the signature that groups crashes into problems.
//!
//! # The report
//! [`analyze`] reads a core handed over as an open descriptor and returns a
//! [`Report`]: every thread's backtrace (function, module + offset,
//! file:line where debug information exists), the crashing thread first
//! and marked, the signal with its code and fault address (NT_SIGINFO), the
//! faulting instruction (bytes, and AT&T disassembly on x86), the modules
//! with their build-ids, and room for the crashing process's last events
//! ([`LastEvents`], which the caller adds: from the crash's LTTng snapshot
//! or recovered from the core). [`render`] writes it for people (the
//! crashing thread and the last events, or everything) and in
//! systemd-coredump's words for the journal.
//!
//! Unwinding and symbols are elfutils' libdwfl (the `elfutils` crate), as
//! in eu-stack and systemd-coredump: CFI, then frame pointers; symbols from
//! the module files found by build-id, their debug information, and
//! debuginfod when [`Limits::debuginfod`] is set (bounded by its timeout).
//!
//! # A core is a user's data
//! libdwfl is C code that parses the core, and the core is whatever the
//! crashed process's memory held. So [`analyze`] never parses it in the
//! caller: it forks a child (`lttng_coredump_engine::child::isolate`) that takes the crashing
//! user's identity (`lttng_coredump_engine::identity`: groups, gid, uid
//! for good), sets no_new_privs, makes itself non-dumpable, bounds its
//! CPU time, address space and file sizes ([`Limits`]), and sends its
//! answer back through its channel, of bounded size; the caller kills it at
//! [`Limits::deadline`] and waits a bounded time for it. A core that makes
//! the unwinder loop, exhaust its memory or crash costs one report:
//! [`AnalysisFailed`], "analysis failed: ...". Before libdwfl sees it, the
//! core's notes are read and checked in Rust ([`notes`]): a core that
//! claims more threads or notes than the limits, whose notes are cut off,
//! or whose crashing thread's stack is not in it is refused with the reason.
//! A crashing thread whose frame chain loops (a frame repeats an earlier
//! one) is a corrupt or crafted stack: refused too.
//!
//! # The signature
//! [`signature()`] reduces a report to a stable hash: see the [`signature`]
//! module for the exact rule.

pub mod analysis;
pub mod demangle;
pub mod disasm;
pub mod exec;
pub mod model;
pub mod notes;
pub mod render;
mod sandbox;
pub mod signals;
pub mod signature;
pub mod synthetic;

pub use analysis::analyze_here;
pub use lttng_coredump_engine::identity::Identity;
pub use model::{
    Analysis, Event, EventSource, Frame, Instruction, LastEvents, Module, Process, Report, Signal,
    Thread,
};
pub use signature::{signature, Signature};

use lttng_coredump_engine::child::isolate::{Options, CHILD_KEPT_FDS};
use lttng_coredump_engine::identity::run_as_with;
use lttng_ctl::ErrorCode;
use std::fmt;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What one analysis may cost.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// The child is killed when it has not answered by then.
    pub deadline: Duration,
    /// The most the child may send back (the report's JSON).
    pub max_report_bytes: usize,
    /// Address space the child may use beyond what it inherits and the
    /// core it maps (`RLIMIT_AS`).
    pub memory: u64,
    /// The largest core decompressed (a zstd core is decompressed into
    /// memory first); also the child's `RLIMIT_FSIZE`.
    pub max_core_bytes: u64,
    /// A core that claims more threads than this is refused.
    pub max_threads_in_core: usize,
    /// Threads unwound (the crashing one first); the others are counted.
    pub max_threads: usize,
    /// Frames per thread.
    pub max_frames: usize,
    /// Modules listed.
    pub max_modules: usize,
    /// Source file and line of each frame, where debug information exists
    /// (reading it costs most of the analysis when a module's DWARF is
    /// large or compressed, as distributions' debug packages are).
    pub source_lines: bool,
    /// Symbols through debuginfod, when set.
    pub debuginfod: Option<Debuginfod>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            deadline: Duration::from_secs(30),
            max_report_bytes: 4 << 20,
            memory: 1 << 30,
            max_core_bytes: 32 << 30,
            max_threads_in_core: 32768,
            max_threads: 256,
            max_frames: 256,
            max_modules: 4096,
            source_lines: true,
            debuginfod: None,
        }
    }
}

/// Where and how long to ask debuginfod servers for symbols.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Debuginfod {
    /// Server URLs, space-separated (`DEBUGINFOD_URLS`).
    pub urls: String,
    /// The time all downloads of one analysis may take together; each one
    /// also gets it as `DEBUGINFOD_TIMEOUT` and `DEBUGINFOD_MAXTIME`.
    pub timeout: Duration,
    /// The largest file downloaded (`DEBUGINFOD_MAXSIZE`).
    pub max_size: u64,
    /// The cache directory (writable by the crashing user); a fresh one,
    /// removed afterwards, when `None`.
    pub cache: Option<PathBuf>,
}

impl Debuginfod {
    /// The settings libdebuginfod would take from this process's
    /// environment (`DEBUGINFOD_URLS`, `DEBUGINFOD_TIMEOUT` in seconds,
    /// `DEBUGINFOD_MAXSIZE`, `DEBUGINFOD_CACHE_PATH`), with a 10 s timeout
    /// and a 1 GiB maximum by default; `None` without `DEBUGINFOD_URLS`.
    pub fn from_env() -> Option<Debuginfod> {
        let urls = std::env::var("DEBUGINFOD_URLS")
            .ok()
            .filter(|u| !u.trim().is_empty())?;
        let number = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse().ok());
        Some(Debuginfod {
            urls,
            timeout: Duration::from_secs(number("DEBUGINFOD_TIMEOUT").unwrap_or(10)),
            max_size: number("DEBUGINFOD_MAXSIZE").unwrap_or(1 << 30),
            cache: std::env::var_os("DEBUGINFOD_CACHE_PATH").map(PathBuf::from),
        })
    }
}

/// The program that crashed, as the caller knows it.
#[derive(Debug, Clone, Copy)]
pub enum Executable<'a> {
    /// Its path: the child opens it (as the crashing user).
    Path(&'a Path),
    /// A descriptor of it the caller opened (`/proc/PID/exe` while the
    /// process was held: the very file, even if replaced since), and its
    /// path for the report.
    Open {
        file: BorrowedFd<'a>,
        path: &'a Path,
    },
}

/// Why a core has no report: "analysis failed: REASON".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalysisFailed {
    pub reason: String,
}

impl fmt::Display for AnalysisFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "analysis failed: {}", self.reason)
    }
}

impl std::error::Error for AnalysisFailed {}

/// Why an analysis that would run as root does not.
const NEVER_AS_ROOT: &str = "a core is never parsed as root: pass an unprivileged identity (the crashing user, or a service account such as nobody for root's crashes and root-only cores)";

fn failed(reason: impl Into<String>) -> AnalysisFailed {
    AnalysisFailed {
        reason: reason.into(),
    }
}

/// Analyzes the core on `core` (an ELF core, plain or zstd-compressed, read
/// from its start) in a bounded child acting as `identity` (the crashing
/// user; the caller's own identity when `None`), and returns its report.
///
/// A core is never parsed as root: when the child would be root (no
/// identity given to a caller running as root, or root's identity), the
/// analysis fails at once. A crash of root, or a core only root may read
/// (set-uid programs), is analyzed as an unprivileged service account
/// (`nobody`), and its report kept as private as its core.
///
/// Nothing of the caller's waits without a bound: the child is killed at
/// `limits.deadline` and reaped within `lttng_coredump_engine::child::isolate::REAP_GRACE`
/// (or left behind, see `lttng_coredump_engine::child::isolate`). Everything the child says
/// is read as untrusted JSON of at most `limits.max_report_bytes`.
///
/// Call it after the core is stored and the crashed process let go: it
/// takes the core's analysis time, never the crash's. Prepare everything
/// before a call from a multi-threaded program (the child is forked).
pub fn analyze(
    core: BorrowedFd<'_>,
    executable: Option<Executable<'_>>,
    identity: Option<&Identity>,
    limits: &Limits,
) -> Result<Report, AnalysisFailed> {
    let as_uid = identity.map_or_else(|| rustix::process::geteuid().as_raw(), Identity::uid);
    if as_uid == 0 {
        return Err(failed(NEVER_AS_ROOT));
    }
    let mut keep = vec![core];
    let (open_as, name): (Option<PathBuf>, Option<String>) = match executable {
        None => (None, None),
        Some(Executable::Path(path)) => (
            Some(path.to_path_buf()),
            Some(path.to_string_lossy().into_owned()),
        ),
        Some(Executable::Open { file, path }) => {
            keep.push(file);
            (
                Some(PathBuf::from(format!(
                    "/proc/self/fd/{}",
                    CHILD_KEPT_FDS + 1
                ))),
                Some(path.to_string_lossy().into_owned()),
            )
        }
    };
    let options = Options {
        deadline: limits.deadline,
        max_output: limits.max_report_bytes,
        keep: &keep,
    };
    let bytes = run_as_with(&options, identity, |kept| {
        let answer = match kept.first() {
            Some(&core) => sandbox::child(core, open_as.as_deref(), name.as_deref(), limits),
            None => Err("the child has no core descriptor".into()),
        };
        serde_json::to_vec(&answer).unwrap_or_default()
    })
    .map_err(|err| match err.code() {
        ErrorCode::Cancelled => failed(format!(
            "it did not finish within {} ms and was killed",
            limits.deadline.as_millis()
        )),
        ErrorCode::PermissionDenied => failed(format!(
            "the child could not act as the crashing user: {}",
            err.message()
        )),
        _ => failed(with_signal_name(err.message())),
    })?;
    read_answer(&bytes)
}

/// The child's answer (its JSON, untrusted) read back: the report, or why
/// there is none.
fn read_answer(bytes: &[u8]) -> Result<Report, AnalysisFailed> {
    let answer: sandbox::Answer = serde_json::from_slice(bytes)
        .map_err(|e| failed(format!("the child's answer is not a report: {e}")))?;
    answer.map_err(failed)
}

/// "killed by signal 11" with the signal's name.
fn with_signal_name(message: &str) -> String {
    let Some(at) = message.find("killed by signal ") else {
        return message.to_string();
    };
    let rest = &message[at + "killed by signal ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    match digits.parse().ok().and_then(signals::name) {
        Some(name) => {
            let (head, tail) = message.split_at(at + "killed by signal ".len() + digits.len());
            let why = match name {
                "SIGXCPU" => ": its CPU time limit",
                "SIGSEGV" | "SIGBUS" | "SIGILL" | "SIGFPE" => ": it crashed",
                "SIGABRT" => ": it aborted (out of its memory limit?)",
                _ => "",
            };
            format!("the analysis child {head} ({name}{why}){tail}")
        }
        None => format!("the analysis child {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_core_is_never_parsed_as_root() {
        let root = Identity::of_user(0).unwrap();
        let core = rustix::fs::memfd_create("core", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let err = analyze(
            std::os::fd::AsFd::as_fd(&core),
            None,
            Some(&root),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(err.reason.contains("never parsed as root"), "{err}");
    }
}
