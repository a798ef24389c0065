//! The analysis in a process the caller executed rather than forked: the
//! two ends of it, for a caller (the handler) whose own memory should not
//! be the analysis child's.
//!
//! [`analyze`](crate::analyze) forks: its child carries every page its
//! parent had touched (the handler's 11.5 MiB), counted again in the
//! child's RSS on top of libdw's and the DWARF it reads. A caller that
//! starts a fresh program instead (the handler runs itself again, as the
//! analyst, through its user-child trampoline: a new session, the user's
//! ids checked, no new privileges, not dumpable, an empty environment)
//! hands it the core and the executable as descriptors and a [`Request`],
//! and the program calls [`run_here`]: the same confinement and analysis
//! as the forked child's (`sandbox.rs`: limits on CPU time,
//! address space, file sizes, no core of its own), the same answer. The
//! caller reads at most [`Limits::max_report_bytes`] of it within
//! [`Limits::deadline`], kills the child past either, and reads the bytes
//! back with [`read_answer`].

use crate::{failed, sandbox, AnalysisFailed, Limits, Report};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::PathBuf;

/// What the caller sends the executed child beside the descriptors (the
/// core, then the executable when `executable_name` is set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub limits: Limits,
    /// The executable's path, for the report (its descriptor is passed).
    pub executable_name: Option<String>,
}

/// In the executed child, already acting as the analyst: refuses to parse
/// the core as root, confines itself and analyzes the core on `core` (with
/// the executable on `executable`, reopened through `/proc/self/fd` with
/// the analyst's rights); returns the answer to write back.
pub fn run_here(
    core: BorrowedFd<'_>,
    executable: Option<BorrowedFd<'_>>,
    request: &Request,
) -> Vec<u8> {
    let answer: sandbox::Answer = if rustix::process::geteuid().is_root() {
        Err(crate::NEVER_AS_ROOT.into())
    } else {
        let path = executable.map(|fd| PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())));
        sandbox::child(
            core,
            path.as_deref(),
            request.executable_name.as_deref(),
            &request.limits,
        )
    };
    serde_json::to_vec(&answer).unwrap_or_default()
}

/// The executed child's answer read back (untrusted JSON): the report, or
/// why there is none.
pub fn read_answer(bytes: &[u8]) -> Result<Report, AnalysisFailed> {
    crate::read_answer(bytes)
}

/// "analysis failed: the analysis child killed by signal 9 (SIGKILL)...":
/// how an executed child that did not answer ended (`message` such as
/// "killed by signal 11"), with the signal's name and what it means.
pub fn child_ended(message: &str) -> AnalysisFailed {
    failed(crate::with_signal_name(message))
}

/// "analysis failed: REASON" for a reason of the caller's.
pub fn failure(reason: impl Into<String>) -> AnalysisFailed {
    failed(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_crosses_as_json_and_an_answer_reads_back() {
        let request = Request {
            limits: Limits {
                source_lines: false,
                ..Limits::default()
            },
            executable_name: Some("/usr/bin/x".into()),
        };
        let bytes = serde_json::to_vec(&request).unwrap();
        assert_eq!(serde_json::from_slice::<Request>(&bytes).unwrap(), request);
        let refused = serde_json::to_vec(&sandbox::Answer::Err("no".into())).unwrap();
        assert_eq!(
            read_answer(&refused).unwrap_err().to_string(),
            "analysis failed: no"
        );
        assert!(read_answer(b"{")
            .unwrap_err()
            .reason
            .contains("not a report"));
        assert_eq!(
            child_ended("killed by signal 11").to_string(),
            "analysis failed: the analysis child killed by signal 11 (SIGSEGV: it crashed)"
        );
    }
}
