//! The crash's journal entry, as systemd-coredump writes it (the journal
//! crate's `coredump::Entry`): every `COREDUMP_*` field `coredumpctl`
//! reads (it needs `COREDUMP_UID`, `COREDUMP_GID` and the rest of the set:
//! 252's `list` aborts on an entry without either; an id the kernel did
//! not give, a garbled argument, is written as 65534 and said in
//! `LTTNG_COREDUMP_UID_UNKNOWN`/`_GID_UNKNOWN`, never as root's 0),
//! `COREDUMP_FILENAME` naming our core (`.zst` when
//! compressed), `MESSAGE` with the report's backtrace in systemd's words,
//! and ours: `LTTNG_COREDUMP_CRASH_ID`, `LTTNG_COREDUMP_SIGNATURE`, the
//! snapshots, the record. Built from the crash record, sent once the
//! record is written (it names it), over journald's native socket within
//! [`SEND_TIMEOUT`]; where journald does not run the syslog line stays.

use crate::store::record::CrashRecord;
use lttng_coredump_journal::coredump::CoreFile;
use lttng_coredump_journal::{Crash, Entry, Fields, SendError};
use lttng_coredump_report::{render, signals};
use std::path::Path;
use std::time::Duration;

/// The longest journald may take to accept the entry.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// The entry's content, from the crash's record (`record_path`: where it
/// was written, when it was).
pub fn crash_of(record: &CrashRecord, record_path: Option<&Path>) -> Crash {
    let crashed = &record.crashed;
    let signal = crashed.signal.as_ref().map_or(0, |s| s.number);
    let mut proc = Fields::new();
    if let Some(cgroup) = &crashed.cgroup {
        let unified = cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap_or(cgroup);
        proc.push("COREDUMP_CGROUP", unified);
    }
    let report = record.report.report.as_ref();
    Crash {
        pid: crashed.pid.unwrap_or(0),
        uid: crashed.uid,
        gid: crashed.gid,
        signal,
        signal_name: (signal != 0).then(|| signals::display_name(signal)),
        timestamp_usec: crashed
            .time
            .and_then(|t| u64::try_from(t).ok())
            .map_or(0, |t| t.saturating_mul(1_000_000)),
        rlimit: crashed.core_limit,
        hostname: crashed.hostname.clone(),
        dumpable: crashed.dump_mode,
        comm: crashed.process_name.clone().unwrap_or_default(),
        exe: crashed.exe_path.clone(),
        cmdline: crashed.cmdline.as_ref().map(|args| args.join(" ")),
        proc,
        core: record.core.path.as_ref().map(|path| CoreFile {
            path: path.clone(),
            truncated: !record.core.complete,
        }),
        stack_trace: report
            .map(|r| render::systemd_stack_trace(r) + &render::journal_last_events(r)),
        package_json: report.map(render::package_json),
        analysis_failed: record.report.not_analyzed_reason.clone(),
        crash_id: crashed.crash_id.clone(),
        signature: record.report.signature.clone(),
        problem: record.report.title.clone(),
        snapshots: record
            .snapshots
            .iter()
            .filter(|s| s.error.is_none())
            .filter_map(|s| s.path.clone())
            .collect(),
        trace_only_in_core: record.core_trace.only_in_core,
        record: record_path.map(|p| p.to_string_lossy().into_owned()),
        report: None,
    }
}

/// Sends the entry for `crash` to the journald on `socket`: what to log.
pub fn send(crash: &Crash, socket: &Path) -> Result<String, SendError> {
    Entry::from(crash)
        .send(socket, SEND_TIMEOUT)
        .map(|sent| format!("journal entry sent to {} ({sent:?})", socket.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_has_the_full_coredump_field_set_and_ours() {
        let mut record = crate::store::record::tests::sample();
        record.report.signature = Some("ab".repeat(32));
        record.report.not_analyzed_reason = Some("analysis failed: x".into());
        let crash = crash_of(&record, Some(Path::new("/c/core.x.42.1.json")));
        let entry = Entry::from(&crash);
        let get = |name: &str| {
            String::from_utf8(
                entry
                    .fields
                    .get(name)
                    .unwrap_or_else(|| panic!("{name}"))
                    .to_vec(),
            )
            .unwrap()
        };
        assert_eq!(get("COREDUMP_UID"), "1000");
        assert_eq!(get("COREDUMP_GID"), "1000");
        assert_eq!(get("COREDUMP_PID"), "42");
        assert_eq!(get("COREDUMP_SIGNAL"), "11");
        assert_eq!(get("COREDUMP_SIGNAL_NAME"), "SIGSEGV");
        assert_eq!(get("COREDUMP_TIMESTAMP"), "1700000000000000");
        assert_eq!(get("COREDUMP_EXE"), "/usr/bin/x");
        assert_eq!(get("COREDUMP_CMDLINE"), "x --flag");
        assert_eq!(get("COREDUMP_CGROUP"), "/user.slice");
        assert_eq!(
            get("COREDUMP_FILENAME"),
            "/var/lib/lttng-coredump/cores/core.x.42.1700000000"
        );
        assert_eq!(
            get("LTTNG_COREDUMP_CRASH_ID"),
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(get("LTTNG_COREDUMP_SIGNATURE"), "ab".repeat(32));
        assert_eq!(get("LTTNG_COREDUMP_RECORD"), "/c/core.x.42.1.json");
        assert_eq!(get("LTTNG_COREDUMP_ANALYSIS_FAILED"), "analysis failed: x");
        assert!(get("MESSAGE").starts_with("Process 42 (bad\\x0aname) of user 1000 dumped core."));
    }
}
